//! End-to-end tests of the web admin in headless Chromium: each drives the real server through the pages as a
//! person (or a barcode scanner) would, checks the result through the API, and saves a screenshot.

#[allow(dead_code)] // each test file uses part of it
mod harness;

mod backoffice;
mod items;
mod office;
mod orders;
mod signin;
mod warehouse;

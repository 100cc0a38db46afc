//! Browser tests of the orders pages.

//! Browser tests of the items pages.

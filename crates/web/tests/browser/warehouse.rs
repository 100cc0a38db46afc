//! Browser tests of the warehouse pages.

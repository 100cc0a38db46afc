//! Browser tests of the backoffice pages.

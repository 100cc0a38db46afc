//! Browser tests of the purchasing, replenishment, reports and webhook pages.

//! Double-entry journal for the accounting system: turns costed movements into balanced debit/credit entries on
//! the merchant's accounts, and decides in which accounting period each entry posts.
//!
//! | movement          | debit                 | credit                                   |
//! |-------------------|-----------------------|------------------------------------------|
//! | receipt           | inventory             | GRNI (goods value), landed-cost clearing  |
//! | shipment          | COGS                  | inventory                                |
//! | scrap, shrinkage  | shrinkage             | inventory                                |
//! | adjustment in     | inventory             | inventory gain                           |
//! | return restocked  | inventory             | COGS                                     |
//!
//! Periods are calendar months (UTC). A locked period has been exported and must not change, so an entry dated in
//! a locked period posts on the first day of the first open period after it.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::costing::{CostedKind, CostedMovement, MovementId};
use crate::stock::ItemId;
use crate::{FieldError, Problems};

/// The merchant's account codes, as mapped in settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountMap {
    pub inventory: String,
    /// Goods received not invoiced: the liability a receipt creates until the supplier's invoice is matched.
    pub grni: String,
    pub cogs: String,
    pub shrinkage: String,
    pub inventory_gain: String,
    /// Where freight and duty wait for their invoices, like GRNI for goods.
    pub landed_cost_clearing: String,
}

/// Longest account code accepted: generous for any chart of accounts, short enough for a CSV column.
pub const MAX_ACCOUNT_CODE: usize = 64;

impl AccountMap {
    /// Every code must be present, printable and short; the field names in errors are the JSON field names.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        for (field, code) in [
            ("inventory", &self.inventory),
            ("grni", &self.grni),
            ("cogs", &self.cogs),
            ("shrinkage", &self.shrinkage),
            ("inventory_gain", &self.inventory_gain),
            ("landed_cost_clearing", &self.landed_cost_clearing),
        ] {
            if code.trim().is_empty() || code.len() > MAX_ACCOUNT_CODE || code.chars().any(|c| c.is_control()) {
                p.push(field, format!("must be an account code of 1 to {MAX_ACCOUNT_CODE} printable characters"));
            }
        }
        p.into_result()
    }
}

/// An accounting period: one calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| Self { year, month })
    }
    pub fn of(date: NaiveDate) -> Self {
        Self { year: date.year(), month: date.month() }
    }
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1 }
        } else {
            Self { year: self.year, month: self.month + 1 }
        }
    }
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("periods are built from valid dates")
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("period {0} is already locked")]
    AlreadyLocked(Period),
}

/// Which periods have been exported and locked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodLocks {
    locked: BTreeSet<Period>,
}

impl PeriodLocks {
    pub fn new(locked: impl IntoIterator<Item = Period>) -> Self {
        Self { locked: locked.into_iter().collect() }
    }
    /// Locks a period. Locking one twice is an error, so that a repeated export cannot pass for a first one.
    pub fn lock(&mut self, period: Period) -> Result<(), JournalError> {
        if self.locked.insert(period) {
            Ok(())
        } else {
            Err(JournalError::AlreadyLocked(period))
        }
    }
    pub fn is_locked(&self, period: Period) -> bool {
        self.locked.contains(&period)
    }
    pub fn locked(&self) -> impl Iterator<Item = Period> + '_ {
        self.locked.iter().copied()
    }
    /// The date an entry dated `date` posts on: itself if its period is open, else the first day of the first open
    /// period after it.
    pub fn posting_date(&self, date: NaiveDate) -> NaiveDate {
        let mut p = Period::of(date);
        if !self.is_locked(p) {
            return date;
        }
        while self.is_locked(p) {
            p = p.next();
        }
        p.first_day()
    }
}

/// One side of one account in an entry. Exactly one of debit and credit is non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    pub account: String,
    pub debit: Decimal,
    pub credit: Decimal,
}

/// A balanced entry for one costed movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub item: ItemId,
    pub kind: CostedKind,
    /// The movements this entry books (one per entry today; a list so that summaries can keep their sources).
    pub movement_ids: Vec<MovementId>,
    /// When the movement happened.
    pub dated: NaiveDate,
    /// When the entry posts: `dated`, or the first open day after a locked period.
    pub posting_date: NaiveDate,
    pub period: Period,
    pub currency: String,
    pub lines: Vec<JournalLine>,
}

impl JournalEntry {
    pub fn total_debit(&self) -> Decimal {
        self.lines.iter().map(|l| l.debit).sum()
    }
    pub fn total_credit(&self) -> Decimal {
        self.lines.iter().map(|l| l.credit).sum()
    }
    pub fn is_balanced(&self) -> bool {
        self.total_debit() == self.total_credit()
    }
}

fn debit(account: &str, amount: Decimal) -> JournalLine {
    JournalLine { account: account.to_string(), debit: amount, credit: Decimal::ZERO }
}
fn credit(account: &str, amount: Decimal) -> JournalLine {
    JournalLine { account: account.to_string(), debit: Decimal::ZERO, credit: amount }
}

/// The entry for one costed movement of `item`, or `None` when it moved no value (free goods leave no trace in
/// the books, only in the stock ledger).
pub fn entry_for(item: ItemId, m: &CostedMovement, accounts: &AccountMap, locks: &PeriodLocks) -> Option<JournalEntry> {
    if m.value.is_zero() {
        return None;
    }
    let a = accounts;
    let v = m.value;
    let mut lines = match m.kind {
        CostedKind::Receipt => vec![
            debit(&a.inventory, v),
            credit(&a.grni, v - m.landed_value),
            credit(&a.landed_cost_clearing, m.landed_value),
        ],
        CostedKind::Shipment => vec![debit(&a.cogs, v), credit(&a.inventory, v)],
        CostedKind::Scrap | CostedKind::Shrinkage => vec![debit(&a.shrinkage, v), credit(&a.inventory, v)],
        CostedKind::AdjustmentIn => vec![debit(&a.inventory, v), credit(&a.inventory_gain, v)],
        CostedKind::ReturnRestocked => vec![debit(&a.inventory, v), credit(&a.cogs, v)],
    };
    lines.retain(|l| !(l.debit.is_zero() && l.credit.is_zero()));
    let dated = m.at.date_naive();
    let posting_date = locks.posting_date(dated);
    Some(JournalEntry {
        item,
        kind: m.kind,
        movement_ids: vec![m.id],
        dated,
        posting_date,
        period: Period::of(posting_date),
        currency: m.currency.clone(),
        lines,
    })
}

/// Entries for a run of costed movements of one item, in the same order.
pub fn entries_for(
    item: ItemId,
    movements: &[CostedMovement],
    accounts: &AccountMap,
    locks: &PeriodLocks,
) -> Vec<JournalEntry> {
    movements.iter().filter_map(|m| entry_for(item, m, accounts, locks)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn accounts() -> AccountMap {
        AccountMap {
            inventory: "1400".into(),
            grni: "2150".into(),
            cogs: "5000".into(),
            shrinkage: "5100".into(),
            inventory_gain: "4900".into(),
            landed_cost_clearing: "2160".into(),
        }
    }

    fn costed(id: MovementId, kind: CostedKind, value: Decimal, landed: Decimal, day: u32) -> CostedMovement {
        CostedMovement {
            id,
            at: Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap(),
            kind,
            quantity: 1,
            value,
            landed_value: landed,
            currency: "EUR".into(),
            on_hand_after: 0,
            value_after: Decimal::ZERO,
        }
    }

    #[test]
    fn receipt_books_goods_and_landed_cost_separately() {
        let m = costed(7, CostedKind::Receipt, Decimal::new(11_20, 2), Decimal::new(1_20, 2), 5);
        let e = entry_for(42, &m, &accounts(), &PeriodLocks::default()).unwrap();
        assert_eq!(
            e.lines,
            vec![
                debit("1400", Decimal::new(11_20, 2)),
                credit("2150", Decimal::new(10_00, 2)),
                credit("2160", Decimal::new(1_20, 2)),
            ]
        );
        assert_eq!((e.movement_ids.clone(), e.item, e.posting_date), (vec![7], 42, e.dated));
        assert!(e.is_balanced());
        // Without landed cost there is no zero line.
        let m = costed(8, CostedKind::Receipt, Decimal::ONE, Decimal::ZERO, 5);
        assert_eq!(entry_for(42, &m, &accounts(), &PeriodLocks::default()).unwrap().lines.len(), 2);
    }

    #[test]
    fn each_kind_hits_its_accounts() {
        let v = Decimal::new(5, 0);
        let cases = [
            (CostedKind::Shipment, "5000", "1400"),
            (CostedKind::Scrap, "5100", "1400"),
            (CostedKind::Shrinkage, "5100", "1400"),
            (CostedKind::AdjustmentIn, "1400", "4900"),
            (CostedKind::ReturnRestocked, "1400", "5000"),
        ];
        for (kind, dr, cr) in cases {
            let e = entry_for(1, &costed(1, kind, v, Decimal::ZERO, 1), &accounts(), &PeriodLocks::default()).unwrap();
            assert_eq!(e.lines, vec![debit(dr, v), credit(cr, v)], "{kind:?}");
        }
        assert!(entry_for(
            1,
            &costed(1, CostedKind::Shipment, Decimal::ZERO, Decimal::ZERO, 1),
            &accounts(),
            &PeriodLocks::default()
        )
        .is_none());
    }

    #[test]
    fn late_changes_post_in_the_first_open_period() {
        let mut locks = PeriodLocks::default();
        locks.lock(Period::new(2026, 3).unwrap()).unwrap();
        locks.lock(Period::new(2026, 4).unwrap()).unwrap();
        assert_eq!(
            locks.lock(Period::new(2026, 3).unwrap()),
            Err(JournalError::AlreadyLocked(Period::new(2026, 3).unwrap()))
        );
        let e = entry_for(1, &costed(1, CostedKind::Shipment, Decimal::ONE, Decimal::ZERO, 20), &accounts(), &locks)
            .unwrap();
        assert_eq!(e.dated, NaiveDate::from_ymd_opt(2026, 3, 20).unwrap());
        assert_eq!(e.posting_date, NaiveDate::from_ymd_opt(2026, 5, 1).unwrap());
        assert_eq!(e.period.to_string(), "2026-05");
        // December rolls into the next year.
        let mut locks = PeriodLocks::default();
        locks.lock(Period::new(2025, 12).unwrap()).unwrap();
        assert_eq!(
            locks.posting_date(NaiveDate::from_ymd_opt(2025, 12, 31).unwrap()),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
        assert!(Period::new(2026, 13).is_none());
    }

    #[test]
    fn account_map_names_every_bad_field() {
        let mut a = accounts();
        a.grni = " ".into();
        a.cogs = "x".repeat(65);
        let errs = a.validate().unwrap_err();
        assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec!["grni", "cogs"]);
        assert!(accounts().validate().is_ok());
    }

    fn kind() -> impl Strategy<Value = CostedKind> {
        prop_oneof![
            Just(CostedKind::Receipt),
            Just(CostedKind::AdjustmentIn),
            Just(CostedKind::Shipment),
            Just(CostedKind::Scrap),
            Just(CostedKind::Shrinkage),
            Just(CostedKind::ReturnRestocked),
        ]
    }

    proptest! {
        #[test]
        fn the_inventory_account_equals_the_valuation(
            steps in prop::collection::vec((0u8..4, 1i64..40, 0i64..5_000, 0i64..300), 0..60),
            fifo: bool,
        ) {
            use crate::costing::{CostLedger, CostMethod, CostMovement, CostMovementKind, OutboundReason};
            let method = if fifo { CostMethod::Fifo } else { CostMethod::Average };
            let mut ledger = CostLedger::new(method, "EUR").unwrap();
            let mut on_hand = 0;
            let mut last_shipment = None;
            for (i, (op, q, cents, landed)) in steps.into_iter().enumerate() {
                let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(i as i64);
                let kind = match op {
                    0 | 1 => CostMovementKind::Receipt {
                        quantity: q,
                        unit_cost: Decimal::new(cents, 2),
                        landed_cost: Decimal::new(landed, 2),
                        currency: "EUR".into(),
                    },
                    2 if on_hand > 0 => {
                        let reason = if q % 3 == 0 { OutboundReason::Scrap } else { OutboundReason::Shipment };
                        CostMovementKind::Outbound { quantity: q.min(on_hand), reason }
                    }
                    3 if last_shipment.is_some() => {
                        let (id, left): (i64, i64) = last_shipment.unwrap();
                        CostMovementKind::ReturnRestocked { quantity: left, shipment: id }
                    }
                    _ => continue,
                };
                let c = ledger.apply(&CostMovement { id: i as i64, at, kind }).unwrap();
                match c.kind {
                    CostedKind::Shipment => last_shipment = Some((c.id, c.quantity)),
                    CostedKind::ReturnRestocked => last_shipment = None,
                    _ => {}
                }
                on_hand = c.on_hand_after;
            }
            let locks = PeriodLocks::new([Period::new(2026, 1).unwrap()]);
            let entries = entries_for(1, ledger.history(), &accounts(), &locks);
            let inventory: Decimal = entries
                .iter()
                .flat_map(|e| e.lines.iter())
                .filter(|l| l.account == "1400")
                .map(|l| l.debit - l.credit)
                .sum();
            prop_assert_eq!(inventory, ledger.on_hand().value);
        }

        #[test]
        fn every_entry_balances_and_posts_in_an_open_period(
            ms in prop::collection::vec((kind(), 0i64..10_000_000, 0i64..=100, 1u32..=28), 0..50),
            locked in prop::collection::btree_set(1u32..=12, 0..12),
        ) {
            let locks = PeriodLocks::new(locked.iter().map(|m| Period::new(2026, *m).unwrap()));
            let ms: Vec<CostedMovement> = ms
                .into_iter()
                .enumerate()
                .map(|(i, (k, v, pct, day))| {
                    let value = Decimal::new(v, 4);
                    let landed = if k == CostedKind::Receipt { (value * Decimal::new(pct, 2)).round_dp(4) } else { Decimal::ZERO };
                    costed(i as i64, k, value, landed, day)
                })
                .collect();
            let entries = entries_for(9, &ms, &accounts(), &locks);
            prop_assert_eq!(entries.len(), ms.iter().filter(|m| !m.value.is_zero()).count());
            for e in &entries {
                prop_assert!(e.is_balanced());
                let m = ms.iter().find(|m| m.id == e.movement_ids[0]).unwrap();
                prop_assert_eq!(e.total_debit(), m.value);
                prop_assert!(e.lines.iter().all(|l| (l.debit.is_zero()) != (l.credit.is_zero())));
                prop_assert!(!locks.is_locked(e.period));
                prop_assert!(e.posting_date >= e.dated);
                prop_assert!(e.posting_date == e.dated || locks.is_locked(Period::of(e.dated)));
            }
        }
    }
}

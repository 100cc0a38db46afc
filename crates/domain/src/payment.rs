//! Payments of an order: authorizations, captures, voids and refunds, checked against the order's total and
//! currency, and the payment status they add up to.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The largest amount of money anything may name: far above any order, far below where decimal arithmetic could
/// overflow when multiplied by a line's quantity.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 1e12

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    Authorize,
    Capture,
    Void,
    Refund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Unpaid,
    Authorized,
    PartiallyPaid,
    Paid,
    PartiallyRefunded,
    Refunded,
}

/// One payment event, as the payment provider reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentEntry {
    pub kind: PaymentKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Decimal,
    /// The provider's transaction id.
    pub reference: Option<String>,
    pub at: DateTime<Utc>,
}

/// The sums of an order's payment events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentTotals {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub authorized: Decimal,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub captured: Decimal,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub voided: Decimal,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub refunded: Decimal,
}

impl PaymentTotals {
    pub fn of(entries: &[PaymentEntry]) -> PaymentTotals {
        let mut t = PaymentTotals::default();
        for e in entries {
            match e.kind {
                PaymentKind::Authorize => t.authorized += e.amount,
                PaymentKind::Capture => t.captured += e.amount,
                PaymentKind::Void => t.voided += e.amount,
                PaymentKind::Refund => t.refunded += e.amount,
            }
        }
        t
    }

    /// Authorized and neither captured nor voided yet. Captures beyond authorizations (direct payments, such as a
    /// bank transfer) do not make this negative.
    pub fn open_authorization(&self) -> Decimal {
        (self.authorized - self.captured - self.voided).max(Decimal::ZERO)
    }

    /// Money kept: captured less refunded.
    pub fn net(&self) -> Decimal {
        self.captured - self.refunded
    }

    pub fn status(&self, total: Decimal) -> PaymentStatus {
        if self.refunded > Decimal::ZERO {
            if self.refunded >= self.captured {
                PaymentStatus::Refunded
            } else {
                PaymentStatus::PartiallyRefunded
            }
        } else if self.captured > Decimal::ZERO && self.captured >= total {
            PaymentStatus::Paid
        } else if self.captured > Decimal::ZERO {
            PaymentStatus::PartiallyPaid
        } else if self.open_authorization() > Decimal::ZERO {
            PaymentStatus::Authorized
        } else {
            PaymentStatus::Unpaid
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("the amount must be positive with at most 2 decimals")]
    InvalidAmount,
    #[error("the payment is in {given}, the order in {order}")]
    CurrencyMismatch { given: String, order: String },
    #[error("only {available} can be {what}, {requested} requested")]
    TooMuch { what: &'static str, available: Decimal, requested: Decimal },
}

/// A payment event as a provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest<'a> {
    pub kind: PaymentKind,
    pub amount: Decimal,
    pub currency: &'a str,
    pub reference: Option<String>,
}

/// Checks a payment event against what the order's events already add up to, and returns it on success.
pub fn record(
    entries: &[PaymentEntry],
    order_total: Decimal,
    order_currency: &str,
    req: PaymentRequest<'_>,
    at: DateTime<Utc>,
) -> Result<PaymentEntry, PaymentError> {
    let PaymentRequest { kind, amount, currency, reference } = req;
    if amount <= Decimal::ZERO || amount > MAX_AMOUNT || amount.round_dp(2) != amount {
        return Err(PaymentError::InvalidAmount);
    }
    if currency != order_currency {
        return Err(PaymentError::CurrencyMismatch { given: currency.into(), order: order_currency.into() });
    }
    let t = PaymentTotals::of(entries);
    let (what, available) = match kind {
        // Never authorize more than is still to be paid.
        PaymentKind::Authorize => ("authorized", (order_total - t.net() - t.open_authorization()).max(Decimal::ZERO)),
        // With an open authorization a capture takes from it; without one it is a direct payment of what is due.
        // Never capture more than the order's total, even from a larger (older) authorization.
        PaymentKind::Capture if t.open_authorization() > Decimal::ZERO => {
            ("captured", t.open_authorization().min((order_total - t.captured).max(Decimal::ZERO)))
        }
        PaymentKind::Capture => ("captured", (order_total - t.net()).max(Decimal::ZERO)),
        PaymentKind::Void => ("voided", t.open_authorization()),
        PaymentKind::Refund => ("refunded", t.net()),
    };
    if amount > available {
        return Err(PaymentError::TooMuch { what, available, requested: amount });
    }
    Ok(PaymentEntry { kind, amount, reference, at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn run(steps: &[(PaymentKind, &str)]) -> Result<Vec<PaymentEntry>, PaymentError> {
        let mut entries = Vec::new();
        for (kind, amount) in steps {
            let req = PaymentRequest { kind: *kind, amount: d(amount), currency: "EUR", reference: None };
            let e = record(&entries, d("100"), "EUR", req, Utc::now())?;
            entries.push(e);
        }
        Ok(entries)
    }

    #[test]
    fn authorize_capture_in_parts_then_refund() {
        use PaymentKind::*;
        let e = run(&[(Authorize, "100")]).unwrap();
        assert_eq!(PaymentTotals::of(&e).status(d("100")), PaymentStatus::Authorized);
        let e = run(&[(Authorize, "100"), (Capture, "40")]).unwrap();
        assert_eq!(PaymentTotals::of(&e).status(d("100")), PaymentStatus::PartiallyPaid);
        let e = run(&[(Authorize, "100"), (Capture, "40"), (Capture, "60")]).unwrap();
        assert_eq!(PaymentTotals::of(&e).status(d("100")), PaymentStatus::Paid);
        let e = run(&[(Authorize, "100"), (Capture, "100"), (Refund, "30")]).unwrap();
        assert_eq!(PaymentTotals::of(&e).status(d("100")), PaymentStatus::PartiallyRefunded);
        let e = run(&[(Capture, "100"), (Refund, "100")]).unwrap();
        assert_eq!(PaymentTotals::of(&e).status(d("100")), PaymentStatus::Refunded);
    }

    #[test]
    fn the_limits_hold() {
        use PaymentKind::*;
        assert!(matches!(
            run(&[(Authorize, "50"), (Capture, "60")]),
            Err(PaymentError::TooMuch { what: "captured", .. })
        ));
        assert!(matches!(run(&[(Capture, "20"), (Refund, "30")]), Err(PaymentError::TooMuch { what: "refunded", .. })));
        assert!(matches!(run(&[(Authorize, "101")]), Err(PaymentError::TooMuch { .. })));
        assert!(matches!(run(&[(Authorize, "60"), (Void, "60"), (Void, "1")]), Err(PaymentError::TooMuch { .. })));
        assert!(matches!(run(&[(Capture, "0")]), Err(PaymentError::InvalidAmount)));
        assert!(matches!(run(&[(Capture, "1.001")]), Err(PaymentError::InvalidAmount)));
        assert_eq!(MAX_AMOUNT, d("1000000000000"));
        assert!(matches!(run(&[(Capture, "1000000000001")]), Err(PaymentError::InvalidAmount)));
        let req = PaymentRequest { kind: Capture, amount: d("10"), currency: "USD", reference: None };
        let wrong = record(&[], d("10"), "EUR", req, Utc::now());
        assert!(matches!(wrong, Err(PaymentError::CurrencyMismatch { .. })));
        let e = run(&[(Authorize, "60"), (Void, "60"), (Capture, "100")]).unwrap();
        assert_eq!(PaymentTotals::of(&e).status(d("100")), PaymentStatus::Paid);
    }
}

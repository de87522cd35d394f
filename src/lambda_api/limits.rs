//! The checks AWS makes before it changes a function's concurrency, as pure functions: reserved and
//! provisioned concurrency against each other, against the account's unreserved minimum and against
//! the pool smyth bound at start (its slots cannot grow while the server runs).

use super::error::ApiError;

/// AWS keeps at least this much of the account's concurrency unreserved.
pub const UNRESERVED_MINIMUM: usize = 100;

/// The unreserved minimum that applies: AWS's 100 when `account_concurrency` is above it; none for a
/// smaller (local) account, where the minimum would forbid every reservation.
pub fn unreserved_minimum(account: usize) -> usize {
    if account > UNRESERVED_MINIMUM {
        UNRESERVED_MINIMUM
    } else {
        0
    }
}

/// What one function holds of the account: its reserved concurrency, or else its provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub reserved: Option<usize>,
    pub provisioned: usize,
}

impl Share {
    pub fn held(self) -> usize {
        self.reserved.unwrap_or(self.provisioned)
    }
}

/// `UnreservedConcurrentExecutions`: the account's concurrency no function holds.
pub fn unreserved(account: usize, shares: impl IntoIterator<Item = Share>) -> usize {
    account.saturating_sub(shares.into_iter().map(Share::held).sum())
}

/// The function as a change sees it: its name, its share now, the slots its pool has, and what the
/// other functions hold of the account.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    pub name: &'a str,
    pub own: Share,
    pub capacity: usize,
    pub others_held: usize,
    pub account: usize,
}

impl Standing<'_> {
    fn beyond_pool(&self, what: &str, requested: usize) -> ApiError {
        ApiError::InvalidParameterValue(format!(
            "{what} {requested} is more than the {} workers smyth runs for {} (its `concurrency`); a pool \
             cannot grow while the server runs: raise `concurrency` in the config and restart",
            self.capacity, self.name
        ))
    }

    fn leaves_too_little(&self, held: usize) -> bool {
        self.others_held + held + unreserved_minimum(self.account) > self.account
    }
}

/// PutFunctionConcurrency.
pub fn check_reserved(requested: usize, at: &Standing) -> Result<(), ApiError> {
    if requested > at.capacity {
        return Err(at.beyond_pool("ReservedConcurrentExecutions", requested));
    }
    if requested < at.own.provisioned {
        return Err(ApiError::InvalidParameterValue(format!(
            "ReservedConcurrentExecutions {requested} is less than the function's provisioned concurrency ({})",
            at.own.provisioned
        )));
    }
    if at.leaves_too_little(requested) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Specified ReservedConcurrentExecutions for function decreases account's \
             UnreservedConcurrentExecution below its minimum value of [{}].",
            unreserved_minimum(at.account)
        )));
    }
    Ok(())
}

/// PutProvisionedConcurrencyConfig.
pub fn check_provisioned(requested: usize, at: &Standing) -> Result<(), ApiError> {
    if requested == 0 {
        return Err(ApiError::InvalidParameterValue(
            "ProvisionedConcurrentExecutions must be at least 1".into(),
        ));
    }
    if at.own.reserved.is_some_and(|reserved| requested > reserved) {
        return Err(ApiError::InvalidParameterValue(
            "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution \
             for function"
                .into(),
        ));
    }
    if requested > at.capacity {
        return Err(at.beyond_pool("ProvisionedConcurrentExecutions", requested));
    }
    // Provisioned concurrency of a function without a reservation comes out of the unreserved pool.
    if at.own.reserved.is_none() && at.leaves_too_little(requested) {
        return Err(ApiError::InvalidParameterValue(format!(
            "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution \
             below its minimum value of [{}].",
            unreserved_minimum(at.account)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(
        reserved: Option<usize>,
        provisioned: usize,
        capacity: usize,
        others: usize,
        account: usize,
    ) -> Standing<'static> {
        Standing { name: "f", own: Share { reserved, provisioned }, capacity, others_held: others, account }
    }

    /// The error's first words, or "ok".
    fn verdict(result: Result<(), ApiError>) -> String {
        match result {
            Ok(()) => "ok".into(),
            Err(err) => err.to_string().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        }
    }

    #[test]
    fn unreserved_table() {
        let share = |reserved, provisioned| Share { reserved, provisioned };
        assert_eq!(unreserved(1000, []), 1000);
        assert_eq!(unreserved(1000, [share(Some(5), 2), share(None, 3), share(None, 0)]), 992);
        assert_eq!(unreserved(10, [share(Some(20), 0)]), 0);
        assert_eq!(unreserved_minimum(1000), 100);
        assert_eq!(unreserved_minimum(101), 100);
        assert_eq!(unreserved_minimum(100), 0);
        assert_eq!(unreserved_minimum(10), 0);
    }

    #[test]
    fn reserved_table() {
        let cases = [
            (0, at(None, 0, 3, 0, 1000), "ok"),
            (3, at(None, 0, 3, 0, 1000), "ok"),
            (4, at(None, 0, 3, 0, 1000), "ReservedConcurrentExecutions 4 is"),
            (1, at(None, 2, 3, 0, 1000), "ReservedConcurrentExecutions 1 is"),
            (2, at(None, 2, 3, 0, 1000), "ok"),
            // the account keeps 100 unreserved: 898 + 3 leaves 99
            (3, at(None, 0, 3, 898, 1000), "Specified ReservedConcurrentExecutions for"),
            (2, at(None, 0, 3, 898, 1000), "ok"),
            // a small account has no minimum, but cannot be overdrawn
            (3, at(None, 0, 3, 7, 10), "ok"),
            (3, at(None, 0, 3, 8, 10), "Specified ReservedConcurrentExecutions for"),
        ];
        for (requested, standing, expected) in cases {
            assert_eq!(verdict(check_reserved(requested, &standing)), expected, "{requested} {standing:?}");
        }
    }

    #[test]
    fn provisioned_table() {
        let cases = [
            (1, at(None, 0, 3, 0, 1000), "ok"),
            (3, at(None, 0, 3, 0, 1000), "ok"),
            (0, at(None, 0, 3, 0, 1000), "ProvisionedConcurrentExecutions must be"),
            (4, at(None, 0, 3, 0, 1000), "ProvisionedConcurrentExecutions 4 is"),
            // above reserved
            (3, at(Some(2), 0, 3, 0, 1000), "Requested Provisioned Concurrency"),
            (2, at(Some(2), 0, 3, 0, 1000), "ok"),
            // without a reservation it comes out of the unreserved pool
            (2, at(None, 0, 3, 899, 1000), "Specified ConcurrentExecutions for"),
            // within a reservation it does not
            (2, at(Some(2), 0, 3, 898, 1000), "ok"),
        ];
        for (requested, standing, expected) in cases {
            assert_eq!(
                verdict(check_provisioned(requested, &standing)),
                expected,
                "{requested} {standing:?}"
            );
        }
    }
}

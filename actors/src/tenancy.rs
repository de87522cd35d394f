//! Tenant isolation (AWS's `PER_TENANT` mode) as pure decisions: whether an invocation's tenant id is
//! acceptable, and which slot runs it. A worker is bound to the first tenant it serves and only ever
//! runs that tenant's invocations; the pool still holds `concurrency` workers across all tenants, so a
//! tenant with no free worker of its own reclaims another tenant's idle one (cold first, then the
//! least recently used), whose process the supervisor kills before the new tenant's runs.

use smyth_config::Strategy;

use crate::state::StateKind;
use crate::strategy::{pick, SlotView};

/// The longest tenant id AWS accepts.
pub const MAX_TENANT_ID: usize = 256;

/// Why an invocation's tenant id is refused (AWS answers `InvalidParameterValueException`, 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantProblem {
    #[error("the function has tenant isolation (TenantIsolationMode PER_TENANT): the invocation needs a tenant id")]
    Missing,
    #[error("the function does not have tenant isolation: the invocation may not name a tenant id")]
    NotIsolated,
    #[error("the tenant id must be 1 to {MAX_TENANT_ID} characters of letters, digits, spaces and ._:/=+-@")]
    Malformed,
}

/// AWS's rule for `TenantId`: 1 to 256 characters of `[a-zA-Z0-9._:/=+\-@ ]`.
fn well_formed(id: &str) -> bool {
    (1..=MAX_TENANT_ID).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "._:/=+-@ ".contains(c))
}

/// The tenant an invocation runs for: the id when the function is isolated, None when it is not.
pub fn check_tenant(id: Option<&str>, isolated: bool) -> Result<Option<String>, TenantProblem> {
    match (id, isolated) {
        (None, false) => Ok(None),
        (None, true) => Err(TenantProblem::Missing),
        (Some(_), false) => Err(TenantProblem::NotIsolated),
        (Some(id), true) if well_formed(id) => Ok(Some(id.to_string())),
        (Some(_), true) => Err(TenantProblem::Malformed),
    }
}

/// The slot for `tenant`'s next invocation, or None to wait. `bound[i]` is the tenant slot `i` serves
/// (None: never used). The strategy chooses among the tenant's own and unbound slots; only when none
/// of those is free is another tenant's free slot reclaimed (a cold one first, then the one unused
/// longest). The caller sees a reclaim as a chosen slot bound to another tenant.
pub fn pick_for_tenant(
    strategy: Strategy,
    slots: &[SlotView],
    bound: &[Option<&str>],
    tenant: &str,
    random: &mut dyn FnMut(usize) -> usize,
) -> Option<usize> {
    let own: Vec<usize> = (0..slots.len()).filter(|&i| bound[i].is_none_or(|b| b == tenant)).collect();
    if own.iter().any(|&i| !slots[i].assigned) {
        let views: Vec<SlotView> = own.iter().map(|&i| slots[i]).collect();
        return pick(strategy, &views, random).map(|k| own[k]);
    }
    (0..slots.len())
        .filter(|&i| !slots[i].assigned && !own.contains(&i))
        .min_by_key(|&i| (slots[i].state != StateKind::Cold, slots[i].last_used, i))
}

/// Whether giving `slot` to `tenant` needs its process killed first: it is bound to another tenant
/// and may still have one.
pub fn must_reclaim(bound: Option<&str>, state: StateKind, tenant: &str) -> bool {
    bound.is_some_and(|b| b != tenant) && state != StateKind::Cold
}

#[cfg(test)]
mod tests {
    use super::*;
    use StateKind::*;

    fn slot(state: StateKind, assigned: bool, last_used: Option<u64>) -> SlotView {
        SlotView { state, assigned, last_used }
    }

    fn first(_: usize) -> usize {
        0
    }

    #[test]
    fn tenant_ids_as_aws_checks_them() {
        let long = "a".repeat(257);
        let longest = "a".repeat(256);
        type Row<'a> = (Option<&'a str>, bool, Result<Option<String>, TenantProblem>);
        let cases: Vec<Row> = vec![
            (None, false, Ok(None)),
            (None, true, Err(TenantProblem::Missing)),
            (Some("blue"), false, Err(TenantProblem::NotIsolated)),
            (Some("blue"), true, Ok(Some("blue".into()))),
            (Some("org/a=b+c@d:e.f g-h_i"), true, Ok(Some("org/a=b+c@d:e.f g-h_i".into()))),
            (Some(&longest), true, Ok(Some(longest.clone()))),
            (Some(&long), true, Err(TenantProblem::Malformed)),
            (Some(""), true, Err(TenantProblem::Malformed)),
            (Some("a;b"), true, Err(TenantProblem::Malformed)),
            (Some("blå"), true, Err(TenantProblem::Malformed)),
        ];
        for (id, isolated, expected) in cases {
            assert_eq!(check_tenant(id, isolated), expected, "{id:?} isolated={isolated}");
        }
    }

    #[test]
    fn pick_for_tenant_table() {
        let warm = |used| slot(Warm, false, Some(used));
        let busy = |used| slot(Busy, true, Some(used));
        let cold = slot(Cold, false, None);
        // (tenant, slots, the tenant each slot is bound to, expected)
        type Row<'a> = (&'a str, Vec<SlotView>, Vec<Option<&'a str>>, Option<usize>);
        let cases: Vec<Row> = vec![
            // the tenant's own warm worker first
            ("a", vec![cold, warm(1)], vec![None, Some("a")], Some(1)),
            // never another tenant's warm worker while an unbound slot is free
            ("a", vec![warm(1), cold], vec![Some("b"), None], Some(1)),
            // a new tenant with no free own or unbound slot reclaims the least recently used idle one
            ("c", vec![warm(2), warm(1)], vec![Some("a"), Some("b")], Some(1)),
            // a cold slot of another tenant (no process) before any warm one
            ("c", vec![warm(1), slot(Cold, false, Some(5))], vec![Some("a"), Some("b")], Some(1)),
            // busy workers are never reclaimed: wait
            ("c", vec![busy(1), busy(2)], vec![Some("a"), Some("b")], None),
            // the tenant's own worker is busy and another's idle: reclaim it (the pool scales by tenant)
            ("a", vec![busy(1), warm(2)], vec![Some("a"), Some("b")], Some(1)),
            // its own busy worker, nothing free at all: wait
            ("a", vec![busy(1), busy(2)], vec![Some("a"), Some("b")], None),
            // an empty pool never picks
            ("a", vec![], vec![], None),
        ];
        for (tenant, slots, bound, expected) in cases {
            let got = pick_for_tenant(Strategy::FirstWarm, &slots, &bound, tenant, &mut first);
            assert_eq!(got, expected, "{tenant} {slots:?} {bound:?}");
        }
    }

    #[test]
    fn the_strategy_chooses_among_the_tenants_own_slots() {
        let slots = [slot(Warm, false, Some(3)), slot(Warm, false, Some(1)), slot(Warm, false, Some(2))];
        let bound = [Some("a"), Some("b"), Some("a")];
        let lru = pick_for_tenant(Strategy::LeastRecentlyUsed, &slots, &bound, "a", &mut first);
        assert_eq!(lru, Some(2));
        let random = pick_for_tenant(Strategy::Random, &slots, &bound, "a", &mut |n| n - 1);
        assert_eq!(random, Some(2));
    }

    #[test]
    fn reclaiming_kills_only_another_tenants_live_process() {
        assert!(must_reclaim(Some("b"), Warm, "a"));
        assert!(must_reclaim(Some("b"), Busy, "a"));
        assert!(!must_reclaim(Some("b"), Cold, "a"));
        assert!(!must_reclaim(Some("a"), Warm, "a"));
        assert!(!must_reclaim(None, Cold, "a"));
    }
}

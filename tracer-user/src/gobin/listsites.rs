//! Inlined `container/list.(*List).Remove` sites: ranges, registers and exits.

use super::GoBinary;
use super::plan::ProbePlan;

/// Adds list-remove probes for the functions in scope.
pub(crate) fn add_list_sites(_bin: &GoBinary, _in_scope: &[(u64, u64, &str, String)], _plan: &mut ProbePlan) {}

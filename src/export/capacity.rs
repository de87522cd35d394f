//! Lambda Managed Instances in the SAM template: a managed handler's function runs on a capacity
//! provider (`CapacityProviderConfig`, whose `Arn` the template takes as a parameter, since the
//! provider's VPC and instance choices are not in the config) with its `max_concurrency` as
//! `PerExecutionEnvironmentMaxConcurrency`, and logs JSON as AWS requires.

use super::sam::{map, Function};

/// The template parameter that names the capacity provider.
pub const CAPACITY_PROVIDER_PARAMETER: &str = "CapacityProviderArn";

pub(super) fn capacity_provider(f: &mut Function) {
    let Some(managed) = f.handler.managed_instances else { return };
    let arn = map([("Ref", CAPACITY_PROVIDER_PARAMETER.into())]);
    let max_concurrency = managed.max_concurrency as u64;
    f.set(
        "CapacityProviderConfig",
        map([("Arn", arn), ("PerExecutionEnvironmentMaxConcurrency", max_concurrency.into())]),
    );
    if !f.properties.contains_key("LoggingConfig") {
        f.set("LoggingConfig", map([("LogFormat", "JSON".into())]));
    }
    let parameter = map([
        ("Type", "String".into()),
        ("Description", "ARN of the Lambda capacity provider the managed-instances functions run on".into()),
    ]);
    if !f.parameters.iter().any(|(id, _)| id == CAPACITY_PROVIDER_PARAMETER) {
        f.parameters.push((CAPACITY_PROVIDER_PARAMETER.into(), parameter));
    }
}

//! `template.yaml` against the code: every variable a function requires is set for it, and
//! every AWS action it calls is granted to it, on exactly the resources it needs. cfn-lint's
//! own parser reads the template (CloudFormation's short-form tags need it), then the checks
//! run here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The modules share the imports below and the helpers of `support` (and a few of each
// other's) through `use crate::*`: one test program in several files.

pub(crate) use std::collections::{BTreeMap, BTreeSet};

pub(crate) use regionpilot::aws::permissions;
pub(crate) use regionpilot_tests::paths;
pub(crate) use serde_json::{Value, json};

mod alarms;
mod events;
mod grants;
mod mrsc;
mod parameters;
mod support;
mod traffic;

pub(crate) use alarms::*;
pub(crate) use mrsc::*;
pub(crate) use parameters::*;
pub(crate) use support::*;
pub(crate) use traffic::*;

//! The steps a transition runs besides publishing the parameter: standby capacity, the
//! reload of running instances, the rolling update, and the routing controls.

pub mod capacity;
pub mod reload;
pub mod rolling;
pub mod routing;

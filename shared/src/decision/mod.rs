//! Whether to switch, and where: the triggers decoded from their events, the switch
//! decision over the control state and the evidence, and the failback window.

pub mod event;
pub mod switch;
pub mod window;

//! The control state's compare-and-swap: every state write of every part of regionpilot
//! goes through it, each recognising its own write when the answer was lost.

use tracing::{info, warn};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ports::{ControlStore, Deps};
use crate::state::{ControlState, Versioned, WriteToken};

/// How often we re-read and retry after losing a compare-and-swap.
pub(crate) const MAX_CAS_ATTEMPTS: u32 = 8;

/// What a compare-and-swap came to.
pub(crate) enum Swap {
    /// The state that holds the write: the version written, or a newer one written over it.
    Written(Versioned<ControlState>),
    /// Another writer got there first, or the write did not land: the state as read back
    /// (to decide again on), or `None` when it could not be read.
    Lost(Option<Versioned<ControlState>>),
}

/// The control state over the ports' control store.
pub struct StateStore<'a, D: Deps> {
    config: &'a Config,
    ports: &'a D,
}

impl<'a, D: Deps> StateStore<'a, D> {
    pub fn new(config: &'a Config, ports: &'a D) -> Self {
        StateStore { config, ports }
    }

    /// The stored state, or the implicit initial one (home active, epoch 0).
    pub async fn load(&self) -> Result<Versioned<ControlState>> {
        Ok(self.or_initial(self.ports.control().load().await?))
    }

    fn or_initial(&self, stored: Option<Versioned<ControlState>>) -> Versioned<ControlState> {
        stored.unwrap_or_else(|| Versioned {
            version: 0,
            value: ControlState::initial(self.config.home().clone()),
            writes: Vec::new(),
        })
    }

    /// Writes `next` over `current` with one compare-and-swap.
    ///
    /// A write can be applied and still answer with a timeout or a 500; the SDK's retry of
    /// it then fails its own condition. Either answer is followed by a read: a stored
    /// version whose write tokens include this attempt's holds our write, and we carry on
    /// as if the answer had come back. Without it, an invocation would find its own
    /// transition under its own lease, answer `already_active`, and leave the steps to a
    /// verifier minutes later.
    pub(crate) async fn compare_and_swap(
        &self,
        current: &Versioned<ControlState>,
        next: ControlState,
    ) -> Result<Swap> {
        let token = WriteToken::fresh();
        let written = Versioned {
            version: current.version + 1,
            writes: current.writes_after(token.clone()),
            value: next,
        };
        let answer = self
            .ports
            .control()
            .save(current.version, &written.value, &written.writes)
            .await;
        if matches!(answer, Ok(true)) {
            return Ok(Swap::Written(written));
        }
        let read_back = self.ports.control().load().await;
        match read_back {
            Ok(Some(stored))
                if stored.version >= written.version && stored.writes.contains(&token) =>
            {
                let answered = match &answer {
                    Ok(_) => "a failed condition (its own retry)".to_owned(),
                    Err(e) => e.to_string(),
                };
                warn!(version = written.version, stored = stored.version, answered = %answered, "the control state write landed though its answer was lost; carrying on");
                Ok(Swap::Written(if stored.version == written.version {
                    written
                } else {
                    stored
                }))
            }
            // Not ours: another writer won, or ours never landed. After a transient error
            // the read says which, so the caller may decide again, on this read.
            Ok(stored) => {
                let lost = Swap::Lost(Some(self.or_initial(stored)));
                match answer {
                    Err(Error::Aws(e)) if e.kind.is_transient() => {
                        info!(error = %e, "the control state write did not land; deciding again");
                        Ok(lost)
                    }
                    answer => answer.map(|_| lost),
                }
            }
            // Cannot tell: the write's own answer stands.
            Err(read) => {
                warn!(error = %read, "could not read the control state back after an unclear write");
                answer.map(|_| Swap::Lost(None))
            }
        }
    }

    /// Changes the state with `change` under compare-and-swap, retrying on contention.
    pub(crate) async fn update(&self, change: impl Fn(&mut ControlState)) -> Result<ControlState> {
        Ok(self.update_from(None, change).await?.value)
    }

    /// `update`, first trying `known` (the state as this invocation last wrote it)
    /// without a re-read.
    pub(crate) async fn update_from(
        &self,
        mut known: Option<Versioned<ControlState>>,
        change: impl Fn(&mut ControlState),
    ) -> Result<Versioned<ControlState>> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = match known.take() {
                Some(known) => known,
                None => self.load().await?,
            };
            let mut next = current.value.clone();
            change(&mut next);
            if next == current.value {
                return Ok(current);
            }
            match self.compare_and_swap(&current, next).await? {
                Swap::Written(saved) => return Ok(saved),
                Swap::Lost(stored) => known = stored,
            }
        }
        Err(Error::Contention {
            attempts: MAX_CAS_ATTEMPTS,
        })
    }
}

//! The serving gate: what a Route 53 HTTPS health check asks of a Lambda function URL.
//! `GET /<token>/serving/<region>` answers 200 with a body naming the region when that
//! region is the active one, 503 when another is, 404 for any other path (a wrong token
//! included), 405 for another method and 400 for a body or an oversized path. It changes
//! nothing and tells nothing but serving or not.
//!
//! The decision is the control state, read strongly consistent (in mrsc, this region's
//! replica), with the parameter in the gate's own region as the fallback; a regional
//! stack's gate (`DEPLOYMENT_ROLE=regional`) has no control table and reads only that
//! parameter, so it depends on nothing outside its region. A gate that can read
//! neither answers with the last decision it read for `GATE_STALE_SECONDS` (120 by
//! default), then 503: long enough to ride out a failed read or two at the health check's
//! 10 s interval, short enough that a gate cut off from the decision stops claiming
//! traffic for its region within about the time the metric signal takes to move.

use std::sync::Mutex;

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::config::DeploymentRole;
use crate::controller::Controller;
use crate::ports::{ControlStore, Deps, ParameterStore};
use crate::region::Region;
use crate::state::Millis;

/// Longer paths are refused unread: a real one is a token and a region name.
pub const MAX_PATH_BYTES: usize = 256;

/// A gate's answer, as HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200: `region` is active.
    Serving { region: Region, stale: bool },
    /// 503: another region is active, or the decision is unknown.
    NotServing { region: Region, why: String },
    /// 404: not a gate path, a wrong token, or a region that is not configured.
    NotFound,
    /// 405: only GET.
    MethodNotAllowed,
    /// 400: a body, or a path over `MAX_PATH_BYTES`.
    BadRequest(&'static str),
}

impl Answer {
    pub fn status(&self) -> u16 {
        match self {
            Answer::Serving { .. } => 200,
            Answer::NotServing { .. } => 503,
            Answer::NotFound => 404,
            Answer::MethodNotAllowed => 405,
            Answer::BadRequest(_) => 400,
        }
    }

    /// The body: the health check's search string is `serving <region>`.
    pub fn body(&self) -> String {
        match self {
            Answer::Serving {
                region,
                stale: false,
            } => format!("serving {region}\n"),
            Answer::Serving {
                region,
                stale: true,
            } => {
                format!("serving {region} (last decision read; the decision cannot be read now)\n")
            }
            Answer::NotServing { region, why } => format!("not serving {region}: {why}\n"),
            Answer::NotFound => "not found\n".into(),
            Answer::MethodNotAllowed => "only GET\n".into(),
            Answer::BadRequest(why) => format!("bad request: {why}\n"),
        }
    }

    /// The function URL's response document.
    pub fn response(&self) -> Value {
        let mut response = json!({
            "statusCode": self.status(),
            "headers": {"content-type": "text/plain; charset=utf-8", "cache-control": "no-store"},
            "body": self.body(),
        });
        if self == &Answer::MethodNotAllowed {
            response["headers"]["allow"] = json!("GET");
        }
        response
    }
}

/// Whether a payload is a function URL request (`requestContext.http`), not an event.
pub fn is_url_request(payload: &Value) -> bool {
    payload
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .is_some_and(Value::is_object)
}

/// The region a request asks about, or the answer to a request that reads nothing.
pub fn route(payload: &Value, token: &str, regions: &[Region]) -> Result<Region, Answer> {
    let Ok(request) = serde_json::from_value::<LambdaFunctionUrlRequest>(payload.clone()) else {
        return Err(Answer::BadRequest("not a function URL request"));
    };
    let method = request.request_context.http.method.as_deref().unwrap_or("");
    if !method.eq_ignore_ascii_case("GET") {
        return Err(Answer::MethodNotAllowed);
    }
    if request.body.as_deref().is_some_and(|b| !b.is_empty()) {
        return Err(Answer::BadRequest("a gate request has no body"));
    }
    let path = request.raw_path.as_deref().unwrap_or("");
    if path.len() > MAX_PATH_BYTES {
        return Err(Answer::BadRequest("path too long"));
    }
    let mut parts = path.strip_prefix('/').unwrap_or(path).split('/');
    let (Some(given), Some("serving"), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Answer::NotFound);
    };
    // An empty token configured serves nothing; the comparison takes the same time
    // wherever the tokens differ.
    if token.is_empty() || !same(given.as_bytes(), token.as_bytes()) {
        return Err(Answer::NotFound);
    }
    regions
        .iter()
        .find(|r| r.as_str() == name)
        .cloned()
        .ok_or(Answer::NotFound)
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The last decision a gate read, kept across invocations of one process.
#[derive(Default)]
pub struct LastDecision(Mutex<Option<(Region, Millis)>>);

impl LastDecision {
    fn remember(&self, active: &Region, at: Millis) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((active.clone(), at));
    }

    fn within(&self, now: Millis, bound_ms: Millis) -> Option<Region> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(_, at)| now.saturating_sub(*at) <= bound_ms)
            .map(|(active, _)| active.clone())
    }
}

impl<D: Deps> Controller<D> {
    /// Whether `region` is serving, by the decision: the control state, else this
    /// region's parameter, else the last decision read within `GATE_STALE_SECONDS`.
    pub async fn gate(&self, region: &Region, last: &LastDecision) -> Answer {
        let now = self.now();
        // A regional stack has no control table: its region's parameter is its copy of
        // the decision. (The control role reads the table, its region's replica in mrsc.)
        let from_table = match self.config.role {
            DeploymentRole::Control => match self.ports.control().load().await {
                Ok(state) => {
                    Ok(state.map_or_else(|| self.config.home().clone(), |s| s.value.active_region))
                }
                Err(e) => Err(format!("the control state cannot be read ({e})")),
            },
            DeploymentRole::Regional => Err("regional stack".to_owned()),
        };
        let read = match from_table {
            Ok(active) => Ok(active),
            Err(why) => {
                let name = &self.config.active_region_parameter;
                match self
                    .ports
                    .parameters()
                    .get(&self.config.own_region, name)
                    .await
                {
                    Ok(Some(value)) => Region::parse(&value)
                        .ok()
                        .filter(|r| self.config.contains(r))
                        .ok_or_else(|| format!("{name} holds {value:?}, not a configured region")),
                    Ok(None) => Err(format!("{why}: {name} is missing")),
                    Err(p) => Err(format!("{why}: {name} cannot be read ({p})")),
                }
            }
        };
        let (active, stale) = match read {
            Ok(active) => {
                last.remember(&active, now);
                (active, false)
            }
            Err(why) => {
                let bound = self.config.gate_stale.as_millis() as Millis;
                match last.within(now, bound) {
                    Some(active) => {
                        warn!(error = %why, "gate: answering with the last decision read");
                        (active, true)
                    }
                    None => {
                        warn!(error = %why, "gate: no decision to answer with");
                        return Answer::NotServing {
                            region: region.clone(),
                            why: "the decision cannot be read".into(),
                        };
                    }
                }
            }
        };
        if &active == region {
            Answer::Serving {
                region: region.clone(),
                stale,
            }
        } else {
            info!(asked = %region, active = %active, "gate: not serving");
            Answer::NotServing {
                region: region.clone(),
                why: format!("{active} is active"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::testing::{FakeWorld, alarm_on, config_with, region};

    const TOKEN: &str = "k3y-0f-this-stack_9f2c";

    fn request(method: &str, path: &str, body: Option<&str>) -> Value {
        json!({
            "version": "2.0",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"user-agent": "Amazon-Route53-Health-Check-Service"},
            "requestContext": {
                "accountId": "anonymous",
                "requestId": "r",
                "domainName": "abc.lambda-url.us-west-2.on.aws",
                "time": "05/Dec/2026:10:00:00 +0000",
                "timeEpoch": 1_796_464_800_000_i64,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "54.183.255.128", "userAgent": "Amazon-Route53-Health-Check-Service"}
            },
            "body": body,
            "isBase64Encoded": false
        })
    }

    fn controller(world: &FakeWorld) -> Controller<crate::testing::FakePorts> {
        Controller::new(
            Arc::new(config_with(&[
                ("GATE_TOKEN", TOKEN),
                ("COOLDOWN_SECONDS", "0"),
            ])),
            world.ports(),
        )
    }

    async fn ask(
        c: &Controller<crate::testing::FakePorts>,
        last: &LastDecision,
        payload: &Value,
    ) -> Answer {
        assert!(is_url_request(payload));
        match route(payload, &c.config.gate_token, &c.config.regions) {
            Ok(region) => c.gate(&region, last).await,
            Err(answer) => answer,
        }
    }

    #[tokio::test]
    async fn the_gate_says_serving_for_the_active_region_only() {
        let world = FakeWorld::new();
        let c = controller(&world);
        let last = LastDecision::default();
        let path = |r: &str| format!("/{TOKEN}/serving/{r}");
        // Before any switch, home is active.
        let home = ask(&c, &last, &request("GET", &path("us-east-1"), None)).await;
        assert_eq!(
            (home.status(), home.body()),
            (200, "serving us-east-1\n".into())
        );
        c.handle(alarm_on("us-east-1")).await.unwrap();
        let now_active = ask(&c, &last, &request("GET", &path("us-west-2"), None)).await;
        assert_eq!(now_active.status(), 200);
        let old = ask(&c, &last, &request("GET", &path("us-east-1"), None)).await;
        assert_eq!(old.status(), 503);
        assert!(old.body().contains("us-west-2 is active"), "{}", old.body());
        let third = ask(&c, &last, &request("get", &path("eu-west-1"), None)).await;
        assert_eq!(third.status(), 503);
        let response = now_active.response();
        assert_eq!(response["statusCode"], 200);
        assert_eq!(response["headers"]["cache-control"], "no-store");
    }

    #[tokio::test]
    async fn bad_requests_get_4xx_and_read_nothing() {
        let world = FakeWorld::new();
        let c = controller(&world);
        let last = LastDecision::default();
        // The decision cannot be read: a request that got past routing would say 503.
        world.control.isolated.store(true, Ordering::SeqCst);
        let long = format!("/{TOKEN}/serving/{}", "x".repeat(300));
        for (payload, status) in [
            (
                request("GET", "/wrong-token-000000000/serving/us-east-1", None),
                404,
            ),
            (
                request("GET", &format!("/{TOKEN}/serving/ap-south-1"), None),
                404,
            ),
            (
                request("GET", &format!("/{TOKEN}/serving/us-east-1/more"), None),
                404,
            ),
            (
                request("GET", &format!("/{TOKEN}/status/us-east-1"), None),
                404,
            ),
            (request("GET", "/", None), 404),
            (request("GET", "", None), 404),
            (
                request("POST", &format!("/{TOKEN}/serving/us-east-1"), None),
                405,
            ),
            (
                request("DELETE", &format!("/{TOKEN}/serving/us-east-1"), None),
                405,
            ),
            (
                request("GET", &format!("/{TOKEN}/serving/us-east-1"), Some("x")),
                400,
            ),
            (request("GET", &long, None), 400),
        ] {
            let answer = ask(&c, &last, &payload).await;
            assert_eq!(answer.status(), status, "{payload}: {answer:?}");
        }
        assert!(!is_url_request(&json!({"command": "status"})));
        // No token configured: nothing is served.
        assert_eq!(
            route(
                &request("GET", "//serving/us-east-1", None),
                "",
                &c.config.regions
            ),
            Err(Answer::NotFound)
        );
    }

    #[tokio::test]
    async fn a_gate_that_cannot_read_the_decision_answers_the_last_one_for_its_bound() {
        let world = FakeWorld::new();
        let c = controller(&world);
        let last = LastDecision::default();
        let home = request("GET", &format!("/{TOKEN}/serving/us-east-1"), None);
        assert_eq!(ask(&c, &last, &home).await.status(), 200);
        // The control state cannot be read, and the parameter is missing here.
        world.control.isolated.store(true, Ordering::SeqCst);
        world.clock.advance(c.config.gate_stale.as_millis() as u64);
        let stale = ask(&c, &last, &home).await;
        assert_eq!(
            stale,
            Answer::Serving {
                region: region("us-east-1"),
                stale: true
            }
        );
        world.clock.advance(1);
        let unknown = ask(&c, &last, &home).await;
        assert_eq!(unknown.status(), 503, "{unknown:?}");
        // The parameter in the gate's own region is the fallback.
        world
            .parameters
            .values
            .lock()
            .unwrap()
            .insert(c.config.own_region.clone(), "us-east-1".into());
        assert_eq!(ask(&c, &last, &home).await.status(), 200);
    }

    #[tokio::test]
    async fn a_regional_gate_answers_from_its_regions_parameter_without_a_control_table() {
        // A regional stack: no control table, no health table.
        let world = FakeWorld::new();
        let vars = [
            ("REGIONS", "us-east-1,us-west-2"),
            ("AWS_REGION", "us-east-1"),
            ("ACTIVE_REGION_PARAMETER", "/app/active-region"),
            ("DEPLOYMENT_ROLE", "regional"),
            ("GATE_TOKEN", TOKEN),
        ];
        let config = crate::Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
        .expect("a regional stack needs no table");
        let c = Controller::new(Arc::new(config), world.ports());
        // The control table would say us-east-1 (nothing stored: home); the parameter in
        // us-east-1 says us-west-2, and the regional gate must follow the parameter.
        world
            .parameters
            .values
            .lock()
            .unwrap()
            .insert(region("us-east-1"), "us-west-2".into());
        let last = LastDecision::default();
        let standby = request("GET", &format!("/{TOKEN}/serving/us-west-2"), None);
        let home = request("GET", &format!("/{TOKEN}/serving/us-east-1"), None);
        assert_eq!(ask(&c, &last, &standby).await.status(), 200);
        assert_eq!(ask(&c, &last, &home).await.status(), 503);
        // Its region's Parameter Store down: the last decision, for the bound.
        world.set_region_down("us-east-1", true);
        assert_eq!(
            ask(&c, &last, &standby).await,
            Answer::Serving {
                region: region("us-west-2"),
                stale: true
            }
        );
    }
}

//! One algorithm as a running server holds it: its handler once loaded, the gates that bound
//! its concurrency and its queue, and the top-level fields its payload may carry.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use prometheus::IntGauge;
use serde_json::Value;
use switchyard_wire::task::json_type_name;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Limits;
use crate::algorithm::Handler;
use crate::metrics::{GaugeGuard, Metrics};

pub(crate) struct Hosted {
    pub(crate) name: String,
    pub(crate) schema: Value,
    pub(crate) limits: Limits,
    /// Set once the loader has finished; until then calls are answered 503.
    handler: OnceLock<Handler>,
    /// Set instead when the loader found the machine lacking: why, and how to fix it. Calls are
    /// answered 501 and discovery is told, so nothing is routed here.
    unavailable: OnceLock<String>,
    /// One permit per call running or waiting. A call that finds none is refused at once, so
    /// the number of buffered bodies, and with it memory, is bounded.
    admitted: Arc<Semaphore>,
    /// One permit per call running.
    running: Arc<Semaphore>,
    /// The top-level fields the schema lists, when it closes the object; `None`: any field.
    closed_fields: Option<BTreeSet<String>>,
    in_flight: IntGauge,
    queued: IntGauge,
}

impl Hosted {
    pub(crate) fn new(name: String, schema: Value, limits: Limits, metrics: &Metrics) -> Hosted {
        let (in_flight, queued) = metrics.gauges(&name);
        Hosted {
            closed_fields: closed_fields(&schema),
            admitted: Arc::new(Semaphore::new(limits.concurrency + limits.queue)),
            running: Arc::new(Semaphore::new(limits.concurrency)),
            handler: OnceLock::new(),
            unavailable: OnceLock::new(),
            name,
            schema,
            limits,
            in_flight,
            queued,
        }
    }

    pub(crate) fn handler(&self) -> Option<Handler> {
        self.handler.get().cloned()
    }

    /// Loaded, or found unavailable: either way its loader is done.
    pub(crate) fn is_settled(&self) -> bool {
        self.handler.get().is_some() || self.unavailable.get().is_some()
    }

    /// Why it cannot run here, when its loader said so.
    pub(crate) fn unavailable_reason(&self) -> Option<&str> {
        self.unavailable.get().map(String::as_str)
    }

    pub(crate) fn set_unavailable(&self, reason: String) {
        assert!(
            self.unavailable.set(reason).is_ok(),
            "algorithm '{}' settled twice",
            self.name
        );
    }

    pub(crate) fn set_loaded(&self, handler: Handler) {
        // A runner loads each algorithm once; a second load would be a bug in the runner.
        assert!(
            self.handler.set(handler).is_ok(),
            "algorithm '{}' loaded twice",
            self.name
        );
    }

    /// A place in line, or `None` when every running and waiting place is taken.
    pub(crate) fn admit(&self) -> Option<Admission> {
        let admitted = self.admitted.clone().try_acquire_owned().ok()?;
        Some(Admission {
            admitted,
            running: self.running.clone(),
            queued: GaugeGuard::raise(&self.queued),
            in_flight: self.in_flight.clone(),
        })
    }

    /// Rejects a payload that is not the object the schema describes (serde would take a
    /// struct from an array), and a field the schema does not list, whether or not the payload
    /// type denies unknown fields: an author who forgot `deny_unknown_fields` is still safe.
    pub(crate) fn check_shape(&self, payload: &Value) -> Result<(), String> {
        let expects_object = self.schema.get("type").and_then(Value::as_str) == Some("object");
        let fields = match payload {
            Value::Object(fields) => fields,
            other if expects_object => {
                return Err(format!(
                    "invalid payload: expected a JSON object of fields, got {}",
                    json_type_name(other)
                ));
            }
            _ => return Ok(()),
        };
        let Some(allowed) = &self.closed_fields else {
            return Ok(());
        };
        match fields
            .keys()
            .find(|field| !allowed.contains(field.as_str()))
        {
            None => Ok(()),
            Some(unknown) => Err(format!(
                "invalid payload: unknown field `{unknown}`, expected one of: {}",
                allowed
                    .iter()
                    .map(|field| format!("`{field}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// A schema closes its object when it lists `properties` and does not allow others:
/// `additionalProperties` absent or `false` (a schema there, or `true`, opens it).
fn closed_fields(schema: &Value) -> Option<BTreeSet<String>> {
    let properties = schema.get("properties")?.as_object()?;
    match schema.get("additionalProperties") {
        None | Some(Value::Bool(false)) => Some(properties.keys().cloned().collect()),
        Some(_) => None,
    }
}

/// An admitted call, waiting for a slot to run.
pub(crate) struct Admission {
    admitted: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
    queued: GaugeGuard,
    in_flight: IntGauge,
}

impl Admission {
    /// Waits for a slot; the returned [`Slot`] frees it, and the place in line, when dropped.
    pub(crate) async fn start(self) -> Slot {
        let running = self
            .running
            .acquire_owned()
            .await
            .expect("the runner never closes its semaphores");
        drop(self.queued);
        Slot {
            _admitted: self.admitted,
            _running: running,
            _in_flight: GaugeGuard::raise(&self.in_flight),
        }
    }
}

/// A running call's hold on its slot.
pub(crate) struct Slot {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
    _in_flight: GaugeGuard,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hosted(schema: Value, limits: Limits) -> Hosted {
        Hosted::new("t".into(), schema, limits, &Metrics::new())
    }

    #[test]
    fn a_closed_schema_rejects_unlisted_fields() {
        let schema = json!({"type": "object", "properties": {"text": {}, "lang": {}}});
        let hosted = hosted(schema, Limits::default());
        assert_eq!(hosted.check_shape(&json!({"text": "a"})), Ok(()));
        assert_eq!(
            hosted.check_shape(&json!({"text": "a", "colour": 1})),
            Err("invalid payload: unknown field `colour`, expected one of: `lang`, `text`".into())
        );
    }

    #[test]
    fn an_object_schema_refuses_anything_but_an_object() {
        let hosted = hosted(
            json!({"type": "object", "properties": {"text": {}}}),
            Limits::default(),
        );
        assert_eq!(
            hosted.check_shape(&json!(["a"])),
            Err("invalid payload: expected a JSON object of fields, got an array".into())
        );
        assert!(
            hosted
                .check_shape(&json!("a"))
                .unwrap_err()
                .ends_with("got a string")
        );
        let any = self::hosted(json!({"type": "string"}), Limits::default());
        assert_eq!(
            any.check_shape(&json!("a")),
            Ok(()),
            "a payload that is not an object is the schema's call"
        );
    }

    #[test]
    fn an_open_schema_lets_extra_fields_through() {
        for additional in [json!(true), json!({"type": "string"})] {
            let schema = json!({"properties": {"text": {}}, "additionalProperties": additional});
            assert_eq!(
                hosted(schema, Limits::default()).check_shape(&json!({"x": 1})),
                Ok(())
            );
        }
        let closed = json!({"properties": {"text": {}}, "additionalProperties": false});
        assert!(
            hosted(closed, Limits::default())
                .check_shape(&json!({"x": 1}))
                .is_err()
        );
        let no_properties = json!({"oneOf": [{"type": "string"}]});
        assert_eq!(
            hosted(no_properties, Limits::default()).check_shape(&json!({"x": 1})),
            Ok(())
        );
    }

    #[tokio::test]
    async fn admits_running_plus_queue_calls_and_no_more() {
        let hosted = hosted(
            json!({}),
            Limits {
                concurrency: 1,
                queue: 2,
            },
        );
        let first = hosted.admit().expect("a free slot");
        let waiting: Vec<Admission> = (0..2)
            .map(|_| hosted.admit().expect("a place in line"))
            .collect();
        assert!(hosted.admit().is_none(), "the queue is full");
        assert_eq!(hosted.queued.get(), 3);

        let slot = first.start().await;
        assert_eq!((hosted.queued.get(), hosted.in_flight.get()), (2, 1));
        drop(slot);
        assert_eq!(hosted.in_flight.get(), 0);
        assert!(hosted.admit().is_some(), "a finished call frees its place");
        drop(waiting);
        assert_eq!(hosted.queued.get(), 0, "abandoned places are given back");
    }
}

//! A `tracing` layer that collects every span with its parent and fields
//! (as first given and as recorded later), for the tests that compare what
//! `tracing` saw with the recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::registry::LookupSpan;

/// What the layer saw of one span.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub parent: Option<u64>,
    pub fields: HashMap<String, String>,
}

impl Visit for Seen {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.fields
            .insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields
            .insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .insert(field.name().to_owned(), value.to_string());
    }
}

#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<HashMap<u64, Seen>>>);

impl<S> tracing_subscriber::Layer<S> for Collect
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut seen = Seen {
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.id().into_u64()),
            ..Seen::default()
        };
        attrs.record(&mut seen);
        self.0.lock().unwrap().insert(id.into_u64(), seen);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(seen) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(seen);
        }
    }
}

impl Collect {
    /// The spans seen so far, by `tracing` id.
    pub fn spans(&self) -> HashMap<u64, Seen> {
        self.0.lock().unwrap().clone()
    }

    /// The spans whose `otel.name` is `name`.
    pub fn named(&self, name: &str) -> Vec<Seen> {
        self.spans()
            .into_values()
            .filter(|s| s.fields.get("otel.name").map(String::as_str) == Some(name))
            .collect()
    }

    /// The `otel.name` of a span's parent.
    pub fn parent_name(&self, s: &Seen) -> Option<String> {
        self.spans()
            .get(&s.parent?)?
            .fields
            .get("otel.name")
            .cloned()
    }
}

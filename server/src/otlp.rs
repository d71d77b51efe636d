//! OTLP export of the engine's spans (TOML `[otlp]`, docs/server.md).
//!
//! [`SpanExport`] is a `tracing` layer that turns every cascade span
//! (target `cascade`: contexts and operators) into an OpenTelemetry span
//! **with the ids the engine gave it** (fields `trace_id`, `span_id`,
//! `parent_span_id`, `trace_flags`, `tracestate`; see
//! `cascade::trace_context`). The ids matter: a `traceparent` the engine sends
//! to another node, or the trace id a sqlcommenter comment set, must name
//! spans that the collector receives. `tracing-opentelemetry` cannot do
//! that (it lets the SDK pick span ids when it builds a span, lazily), so
//! this layer builds each span itself, synchronously in `on_new_span`,
//! through an SDK [`IdGenerator`] that hands out the ids this thread just
//! set.
//!
//! The parent of an exported span: its remote parent (a sqlcommenter
//! `traceparent`) if it has one, else its `tracing` parent if that is in
//! the same trace, else none (a connection starts a trace); a span whose
//! `tracing` parent is in another trace links to it instead. Status and
//! cause (`otel.status_code`, `otel.status_message`, `cause`) become the
//! span's status and attributes; the span ends when the `tracing` span
//! closes.
//!
//! Export never blocks a statement: spans go to the SDK's batch processor
//! (a bounded queue drained by its own thread; when it is full, spans are
//! dropped, not waited for), which sends them over gRPC (tonic) to the
//! endpoint. [`OtlpGuard::shutdown`] flushes and stops it.

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};
use std::cell::Cell;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The `[otlp]` table of the server's TOML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The collector's OTLP/gRPC endpoint, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Time one export may take before it is abandoned.
    pub timeout: Duration,
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
#[error("OTLP exporter for {endpoint}: {message}")]
pub struct OtlpError {
    endpoint: String,
    message: String,
}

thread_local! {
    /// The ids the next span built on this thread gets (set right before
    /// `build_with_context`, taken by [`EngineIds`]).
    static NEXT_TRACE: Cell<Option<TraceId>> = const { Cell::new(None) };
    static NEXT_SPAN: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// An SDK id generator that gives the span being built the engine's ids
/// (random ones for spans that are not the engine's).
#[derive(Debug, Default)]
struct EngineIds {
    random: RandomIdGenerator,
}

impl IdGenerator for EngineIds {
    fn new_trace_id(&self) -> TraceId {
        match NEXT_TRACE.with(Cell::take) {
            Some(t) => t,
            None => self.random.new_trace_id(),
        }
    }
    fn new_span_id(&self) -> SpanId {
        match NEXT_SPAN.with(Cell::take) {
            Some(s) => s,
            None => self.random.new_span_id(),
        }
    }
}

/// Owns the exporter: [`OtlpGuard::shutdown`] (or drop) flushes the spans
/// still queued and stops the batch thread.
#[derive(Debug)]
pub struct OtlpGuard {
    provider: SdkTracerProvider,
}

impl OtlpGuard {
    /// Flushes what is queued and stops the exporter (waits at most the
    /// export timeout). Call it off the async workers (it blocks).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("OTLP exporter shutdown: {e}");
        }
    }
}

/// Starts the OTLP/gRPC exporter of `config`. Call it inside a tokio
/// runtime (the gRPC channel lives on it). The endpoint is connected
/// lazily: a collector that is down costs dropped spans, not errors.
pub fn start(config: &OtlpConfig) -> Result<(SpanExport, OtlpGuard), OtlpError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.timeout)
        .build()
        .map_err(|e| OtlpError {
            endpoint: config.endpoint.clone(),
            message: e.to_string(),
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(EngineIds::default())
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("cascade");
    Ok((SpanExport { tracer }, OtlpGuard { provider }))
}

/// The `tracing` layer that exports cascade's spans (see the module docs).
pub struct SpanExport {
    tracer: SdkTracer,
}

/// What a span's fields say, as first given.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    trace_id: Option<TraceId>,
    span_id: Option<SpanId>,
    parent_span_id: Option<SpanId>,
    flags: Option<u8>,
    tracestate: Option<String>,
    attrs: Vec<KeyValue>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "otel.name" => self.name = Some(value.to_owned()),
            "trace_id" => self.trace_id = TraceId::from_hex(value).ok(),
            "span_id" => self.span_id = SpanId::from_hex(value).ok(),
            "parent_span_id" => self.parent_span_id = SpanId::from_hex(value).ok(),
            "tracestate" => self.tracestate = Some(value.to_owned()),
            other => self
                .attrs
                .push(KeyValue::new(format!("cascade.{other}"), value.to_owned())),
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "trace_flags" => self.flags = u8::try_from(value).ok(),
            "span" => self.attrs.push(KeyValue::new(
                "cascade.recorder_span",
                i64::try_from(value).unwrap_or(i64::MAX),
            )),
            other => self.attrs.push(KeyValue::new(
                format!("cascade.{other}"),
                i64::try_from(value).unwrap_or(i64::MAX),
            )),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attrs
            .push(KeyValue::new(format!("cascade.{}", field.name()), value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attrs
            .push(KeyValue::new(format!("cascade.{}", field.name()), value));
    }
}

/// The exported span, in the `tracing` span's extensions.
struct Exported {
    context: SpanContext,
    span: Mutex<Option<opentelemetry_sdk::trace::Span>>,
    /// The status code and message, recorded one field at a time, set on
    /// the span when it ends.
    status: Mutex<(Option<String>, Option<String>)>,
}

/// Fields recorded later: the status.
#[derive(Default)]
struct Closing {
    status_code: Option<String>,
    message: Option<String>,
    attrs: Vec<KeyValue>,
}

impl Visit for Closing {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "otel.status_code" => self.status_code = Some(value.to_owned()),
            "otel.status_message" => self.message = Some(value.to_owned()),
            other => self
                .attrs
                .push(KeyValue::new(format!("cascade.{other}"), value.to_owned())),
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanExport
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().target() != "cascade" {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut f = Fields::default();
        attrs.record(&mut f);
        let (Some(trace_id), Some(span_id)) = (f.trace_id, f.span_id) else {
            return;
        };
        let flags = TraceFlags::new(f.flags.unwrap_or(1));
        let local_parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Exported>().map(|e| e.context.clone()));
        let mut links = Vec::new();
        let parent = match (f.parent_span_id, local_parent) {
            (Some(remote), local) => {
                let state = f
                    .tracestate
                    .as_deref()
                    .and_then(|s| TraceState::from_str(s).ok())
                    .unwrap_or_default();
                if let Some(l) = local {
                    links.push(Link::with_context(l));
                }
                Some(SpanContext::new(trace_id, remote, flags, true, state))
            }
            (None, Some(l)) if l.trace_id() == trace_id => Some(l),
            (None, Some(l)) => {
                links.push(Link::with_context(l));
                None
            }
            (None, None) => None,
        };
        let cx = match &parent {
            Some(p) => opentelemetry::Context::new().with_remote_span_context(p.clone()),
            None => opentelemetry::Context::new(),
        };
        let name = f.name.unwrap_or_else(|| attrs.metadata().name().to_owned());
        let builder = self
            .tracer
            .span_builder(name)
            .with_attributes(f.attrs)
            .with_links(links);
        NEXT_TRACE.with(|n| n.set(Some(trace_id)));
        NEXT_SPAN.with(|n| n.set(Some(span_id)));
        let built = self.tracer.build_with_context(builder, &cx);
        NEXT_TRACE.with(|n| n.set(None));
        NEXT_SPAN.with(|n| n.set(None));
        let context = SpanContext::new(
            trace_id,
            span_id,
            flags,
            false,
            parent
                .as_ref()
                .map(|p| p.trace_state().clone())
                .unwrap_or_default(),
        );
        span.extensions_mut().insert(Exported {
            context,
            span: Mutex::new(Some(built)),
            status: Mutex::new((None, None)),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        let Some(e) = ext.get::<Exported>() else {
            return;
        };
        let mut c = Closing::default();
        values.record(&mut c);
        if let Ok(mut st) = e.status.lock() {
            if c.status_code.is_some() {
                st.0 = c.status_code;
            }
            if c.message.is_some() {
                st.1 = c.message;
            }
        }
        if c.attrs.is_empty() {
            return;
        }
        let Ok(mut guard) = e.span.lock() else { return };
        if let Some(s) = guard.as_mut() {
            s.set_attributes(c.attrs);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        let Some(e) = ext.get::<Exported>() else {
            return;
        };
        let taken = e.span.lock().ok().and_then(|mut g| g.take());
        if let Some(mut s) = taken {
            let (code, message) = e
                .status
                .lock()
                .map(|mut st| std::mem::take(&mut *st))
                .unwrap_or_default();
            match code.as_deref() {
                Some("OK") => s.set_status(Status::Ok),
                Some("ERROR") => s.set_status(Status::error(message.unwrap_or_default())),
                _ => {}
            }
            s.end();
        }
    }
}

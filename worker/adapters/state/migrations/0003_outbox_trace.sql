-- The trace context (W3C traceparent) of the job that wrote an outbox row, so the relay's
-- publish links to it. NULL when tracing was off.
ALTER TABLE outbox ADD COLUMN trace_parent TEXT;

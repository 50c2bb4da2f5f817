"""Events and notifications: a transactional outbox, webhook delivery and pluggable senders."""

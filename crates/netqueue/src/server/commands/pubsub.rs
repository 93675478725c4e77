//! PUBLISH and SUBSCRIBE: validation, then the fan-out in `crate::pubsub`.

use bytes::Bytes;

use super::{bad, check_name, Conn, Handled};
use crate::protocol::{Event, Reply, MAX_TOPICS};
use crate::server::shared::Shared;

pub(super) fn publish(shared: &Shared, topic: String, payload: Bytes) -> Result<Handled, Reply> {
    check_name("topic", &topic)?;
    shared.pubsub.publish(Event { topic, payload });
    Ok(Handled::Now(Reply::Ok))
}

/// Registers the topics before replying, so every event published after the OK is delivered.
pub(super) fn subscribe(
    shared: &Shared,
    conn: &mut Conn,
    topics: Vec<String>,
) -> Result<Handled, Reply> {
    if topics.is_empty() || conn.topics.len() + topics.len() > MAX_TOPICS {
        return Err(bad(format!(
            "a connection may subscribe to 1..={MAX_TOPICS} topics"
        )));
    }
    for t in &topics {
        check_name("topic", t)?;
    }
    shared.pubsub.subscribe(conn.id, &topics, &conn.events);
    for t in topics {
        if !conn.topics.contains(&t) {
            conn.topics.push(t);
        }
    }
    Ok(Handled::Now(Reply::Ok))
}

//! The timer task: ends leases and delays exactly when due. It sleeps until the earliest
//! deadline, or until an operation creates an earlier one (`Shared::with_broker` wakes it).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::shared::Shared;

pub(super) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let ((), _) = shared.with_broker(|b, now| {
            b.expire(now);
        });
        let next = {
            let mut core = shared.lock();
            let next = core.broker.next_deadline();
            core.armed = next;
            next
        };
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sleep => {}
            _ = shared.timers.notified() => {}
        }
    }
}

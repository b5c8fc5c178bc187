//! The in-memory backend under the contract: every case, nothing to clean up.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Harness, LosesConnections, Orphan, orphan_by_losing_connections};
use crate::Deliveries;
use crate::memory::MemoryBroker;

/// The in-process backend, fresh for each case.
#[derive(Debug)]
pub struct MemoryHarness {
    broker: Arc<MemoryBroker>,
}

#[async_trait]
impl Harness for MemoryHarness {
    type Broker = MemoryBroker;

    async fn open() -> Self {
        MemoryHarness {
            broker: Arc::new(MemoryBroker::new()),
        }
    }

    fn broker(&self) -> &Arc<MemoryBroker> {
        &self.broker
    }

    /// A clone: clones share the queues, as processes share a real broker.
    async fn another_handle(&self) -> Arc<MemoryBroker> {
        Arc::new(MemoryBroker::clone(&self.broker))
    }

    /// A dropped delivery is back in its queue the moment it drops.
    fn redelivery(&self) -> Duration {
        Duration::ZERO
    }

    async fn reply_queue(&self) -> (String, Deliveries) {
        self.broker.reply_queue()
    }

    async fn orphan_next_task(&self) -> Orphan {
        orphan_by_losing_connections(self).await
    }
}

#[async_trait]
impl LosesConnections for MemoryHarness {
    async fn lose_connections(&self) {
        self.broker.disconnect();
    }
}

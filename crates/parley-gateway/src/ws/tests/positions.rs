//! The position check (`ws/positions.rs`): a socket gets the messages whose bus events
//! were lost, by the periodic check or soon after the bus reports a loss.

use super::harness::{node_with_bus, send_message};
use crate::GatewayConfig;
use async_trait::async_trait;
use parley_core::bus::{BusError, BusReceiver, Interest};
use parley_core::local::LocalBus;
use parley_core::{Bus, BusEvent, NodeId};
use parley_proto::ServerFrame;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A bus that loses every `new_message` while `losing`, and reports losses when told.
pub(super) struct LosingBus {
    inner: LocalBus,
    losing: AtomicBool,
    losses: watch::Sender<u64>,
}

impl LosingBus {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: LocalBus::new(NodeId::new("test").unwrap(), 1024),
            losing: AtomicBool::new(false),
            losses: watch::channel(0).0,
        })
    }

    fn report_loss(&self) {
        self.losses.send_modify(|count| *count += 1);
    }
}

#[async_trait]
impl Bus for LosingBus {
    fn node_id(&self) -> &NodeId {
        self.inner.node_id()
    }

    async fn subscribe(&self) -> Result<BusReceiver, BusError> {
        let mut inner = self.inner.subscribe().await?;
        let (sender, receiver) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(event) = inner.recv().await {
                if sender.send(event).await.is_err() {
                    break;
                }
            }
        });
        Ok(BusReceiver::with_losses(receiver, self.losses.subscribe()))
    }

    async fn add_interest(&self, interest: Interest) -> Result<(), BusError> {
        self.inner.add_interest(interest).await
    }

    async fn remove_interest(&self, interest: Interest) -> Result<(), BusError> {
        self.inner.remove_interest(interest).await
    }

    async fn publish(&self, mut events: Vec<BusEvent>) -> Result<(), BusError> {
        if self.losing.load(Ordering::SeqCst) {
            events.retain(|event| {
                !matches!(event, BusEvent::Deliver { frame, .. }
                    if matches!(**frame, ServerFrame::NewMessage(_)))
            });
        }
        self.inner.publish(events).await
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.inner.ping().await
    }
}

/// How long the check may take: the interval or the loss spread, plus the grace.
const CHECK_PATIENCE: Duration = Duration::from_secs(10);

/// The next frame that is not a `receipt` (alice's devices report what they read).
async fn next_message(client: &mut super::harness::Client) -> Value {
    loop {
        let frame = tokio::time::timeout(CHECK_PATIENCE, client.frame())
            .await
            .expect("the missed message comes within the check's time");
        if frame["type"] != "receipt" {
            return frame;
        }
    }
}

/// Alice's reader socket synced and got message 1 live; message 2's event is lost. The
/// check (periodic or after a loss report) resends exactly message 2, once.
async fn a_lost_message_comes_back(config: GatewayConfig, report_loss: bool) {
    let bus = LosingBus::new();
    let node = node_with_bus(config, bus.clone()).await;
    let (mut reader, session) = node.ready_socket("alice").await;
    let conversation_id = node.conversation(&session, &mut reader).await;
    reader.send(json!({"type": "sync", "cursors": {}}));
    assert_eq!(reader.frame().await["type"], "sync_done");
    let mut writer = node.connect(Some(session.clone()));
    assert_eq!(writer.frame().await["type"], "ready");

    writer.send(send_message("m1", &conversation_id, "one"));
    assert_eq!(next_message(&mut writer).await["type"], "msg_ack");
    let live = next_message(&mut reader).await;
    assert_eq!(
        (live["type"].as_str(), live["seq"].as_i64()),
        (Some("new_message"), Some(1))
    );

    bus.losing.store(true, Ordering::SeqCst);
    writer.send(send_message("m2", &conversation_id, "two"));
    assert_eq!(next_message(&mut writer).await["seq"], 2);
    if report_loss {
        // Nothing arrives on its own: the check is what brings it.
        let quiet = tokio::time::timeout(Duration::from_millis(500), next_message(&mut reader));
        let quiet = quiet.await;
        assert!(quiet.is_err(), "the event was lost: {quiet:?}");
        bus.report_loss();
    }
    let resent = next_message(&mut reader).await;
    assert_eq!(resent["type"], "new_message");
    assert_eq!(
        (resent["seq"].as_i64(), resent["content"].as_str()),
        (Some(2), Some("two"))
    );

    // Caught up: the following checks resend nothing, and live delivery goes on.
    bus.losing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    writer.send(send_message("m3", &conversation_id, "three"));
    assert_eq!(next_message(&mut writer).await["seq"], 3);
    let next = next_message(&mut reader).await;
    assert_eq!(next["seq"], 3, "message 2 came once, then 3 live: {next}");
    reader.hang_up().await;
    writer.hang_up().await;
}

#[tokio::test]
async fn the_periodic_check_resends_a_message_whose_event_was_lost() {
    let config = GatewayConfig {
        position_check_interval: Some(Duration::from_secs(1)),
        ..GatewayConfig::default()
    };
    a_lost_message_comes_back(config, false).await;
}

#[tokio::test]
async fn a_reported_loss_makes_sockets_check_soon() {
    let config = GatewayConfig {
        position_check_interval: None,
        ..GatewayConfig::default()
    };
    a_lost_message_comes_back(config, true).await;
}

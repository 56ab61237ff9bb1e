//! A one-off look at the LAN: browse `_fazt._tcp` for a while and list what answered.
//! Needs no running node (it runs its own short-lived mDNS querier, which shares port
//! 5353 with a node or Avahi on the same machine) and announces nothing.

use super::record::{self, NodeRecord, SERVICE_TYPE};
use fazt_hal::discovery::mdns::{Interfaces, MdnsDiscovery, MdnsOptions};
use fazt_hal::discovery::{Discovery, Event};
use futures_lite::future;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Most nodes one scan lists; the rest of a flood is counted, not kept.
const MAX_RESULTS: usize = 1000;

/// What a scan heard.
#[derive(Debug, Default, serde::Serialize)]
pub struct ScanResult {
    /// Nodes found, by name.
    pub nodes: Vec<NodeRecord>,
    /// Records refused (malformed, oversized, forged).
    pub rejected: u64,
}

/// Browses for `timeout` on `interfaces`.
pub fn scan(timeout: Duration, interfaces: Interfaces) -> Result<ScanResult, fazt_hal::discovery::Error> {
    let (discovery, pump) = MdnsDiscovery::new(MdnsOptions { interfaces, ..MdnsOptions::default() })?;
    let events = discovery.events();
    discovery.browse(SERVICE_TYPE)?;
    let deadline = Instant::now() + timeout;
    let mut found: BTreeMap<String, NodeRecord> = BTreeMap::new();
    let mut rejected = 0;
    let listen = async {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = future::or(async { events.recv().await.ok() }, async {
                async_io::Timer::after(left).await;
                None
            });
            match next.await {
                None => break,
                Some(Event::Resolved(service)) => match record::parse(&service) {
                    Ok(r) => {
                        let key = r.fullname.to_ascii_lowercase();
                        if found.len() < MAX_RESULTS || found.contains_key(&key) {
                            found.insert(key, r);
                        }
                    }
                    Err(_) => rejected += 1,
                },
                Some(Event::Removed { fullname }) => {
                    found.remove(&fullname.to_ascii_lowercase());
                }
                Some(_) => {}
            }
        }
    };
    let pump = async {
        pump.await;
        future::pending::<()>().await
    };
    smol::block_on(future::or(listen, pump));
    let _ = discovery.shutdown();
    let mut nodes: Vec<NodeRecord> = found.into_values().collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ScanResult { nodes, rejected })
}

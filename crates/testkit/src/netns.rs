//! Network namespaces for jump-host tests ([`NetLab`]): a bastion reachable from the root
//! namespace, and targets reachable only through it (one hop, or more: target via B via A).
//!
//! # Topology and addresses
//!
//! Every lab takes one free `/24` "slot" `10.231.X.0/24` of [`PRIVATE_RANGE`] (`10.231.0.0/16`),
//! so concurrent test processes never share addresses. Every node is a namespace connected to its
//! parent by its own veth pair on a `/30`: link `k` is `10.231.X.4k/30`, the parent's end is
//! `.4k+1`, the node's end (its [`Node::ip`], where its sshd listens) is `.4k+2`. A bastion's
//! parent is the root namespace (interface `rmtXlk` there). No namespace has a default route or
//! forwards packets (`net.ipv4.ip_forward=0`, set and checked in each), so a node is reachable
//! only from its parent: the worker can reach a target only by a `direct-tcpip` channel through
//! each hop's sshd. A lab holds up to [`MAX_NODES`] nodes (e.g. 50 targets behind one bastion).
//!
//! Before anything, a blackhole route for the whole range is added to the root namespace
//! (`ip route add blackhole 10.231.0.0/16 metric 4000`; left in place, shared by all labs): test
//! traffic to an address that is not a bastion fails at once (`EINVAL`) and can never leave the
//! machine.
//!
//! # Names and cleanup
//!
//! Namespaces are named `rmt<pid>x<n>n<k>` (unique per test process); slots are claimed by
//! creating `/run/remora-testkit/netslots/<X>` exclusively. Dropping the lab deletes its
//! namespaces (and with them every veth) and frees the slot; the reaper does the same if the test
//! process dies. Servers in the nodes are ordinary [`crate::sshd::SshHost`]s
//! ([`crate::sshd::SshHostOptions::in_netns`]) with their own cleanup.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::reaper::Reaper;

/// The private range every lab's addresses come from (blackholed in the root namespace).
pub const PRIVATE_RANGE: &str = "10.231.0.0/16";
/// Nodes per lab (one `/30` each in the lab's `/24`).
pub const MAX_NODES: usize = 64;
const SLOT_DIR: &str = "/run/remora-testkit/netslots";

/// One namespace of a [`NetLab`]: where a server runs and the address it listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    netns: String,
    ip: String,
    parent_ip: String,
}

impl Node {
    /// The namespace name (for `ip netns exec NAME …` / `ip -n NAME …`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The node's address (its end of the link to its parent).
    pub fn ip(&self) -> &str {
        &self.ip
    }

    /// The parent's address on the same link (the root namespace's, for a bastion).
    pub fn parent_ip(&self) -> &str {
        &self.parent_ip
    }

    /// `ip netns exec NS PROGRAM`: a command that runs inside the node.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, program]);
        cmd
    }
}

/// A set of network namespaces for one test. See the module docs.
pub struct NetLab {
    slot: u8,
    slot_file: PathBuf,
    name_prefix: String,
    nodes: Vec<Node>,
    reaper: Option<Reaper>,
}

impl std::fmt::Debug for NetLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetLab")
            .field("subnet", &self.subnet())
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl NetLab {
    /// Claims a slot and adds the blackhole route. Needs root and iproute2 (missing → skip, a
    /// failure under `CI=true`).
    pub fn new() -> Result<NetLab> {
        if crate::which("ip").is_none() {
            return crate::skip("ip not found: install iproute2 (scripts/install-deps.sh)");
        }
        if crate::effective_uid() != Some(0) {
            return crate::skip("network namespaces need root");
        }
        add_blackhole_route()?;
        let mut reaper = Reaper::spawn()?;
        let (slot, slot_file) = claim_slot()?;
        reaper.tell(&format!("dir {}", slot_file.display()));
        Ok(NetLab {
            slot,
            slot_file,
            name_prefix: format!("rmt{}", crate::unique_suffix()),
            nodes: Vec::new(),
            reaper: Some(reaper),
        })
    }

    /// The lab's `/24`, e.g. `10.231.7.0/24`.
    pub fn subnet(&self) -> String {
        format!("10.231.{}.0/24", self.slot)
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A new namespace connected to the root namespace: reachable from the test process.
    pub fn bastion(&mut self) -> Result<Node> {
        self.add_node(None)
    }

    /// A new namespace connected only to `parent` (a node of this lab).
    pub fn add_node_behind(&mut self, parent: &Node) -> Result<Node> {
        if !self.nodes.contains(parent) {
            bail!("{} is not a node of this lab", parent.netns);
        }
        self.add_node(Some(parent.netns.clone()))
    }

    /// Takes the node's end of the link to its parent down (`up = false`) or up again: the node
    /// and everything behind it go dark (connections hang until the client's timeout), as when
    /// a host or a bastion stops answering. Only the node's side changes; the root namespace's
    /// interfaces are never touched.
    pub fn set_link(&self, node: &Node, up: bool) -> Result<()> {
        if !self.nodes.contains(node) {
            bail!("{} is not a node of this lab", node.netns);
        }
        let state = if up { "up" } else { "down" };
        ip_cmd(&["-n", &node.netns, "link", "set", "up0", state])
    }

    fn add_node(&mut self, parent: Option<String>) -> Result<Node> {
        let k = self.nodes.len();
        if k >= MAX_NODES {
            bail!("a NetLab holds at most {MAX_NODES} nodes");
        }
        let netns = format!("{}n{k}", self.name_prefix);
        let base = 4 * k;
        let parent_ip = format!("10.231.{}.{}", self.slot, base + 1);
        let ip = format!("10.231.{}.{}", self.slot, base + 2);
        if let Some(reaper) = &mut self.reaper {
            reaper.tell(&format!("netns {netns}"));
        }
        ip_cmd(&["netns", "add", &netns]).map_err(|e| {
            if format!("{e:#}").contains("Operation not permitted") {
                anyhow!(
                    "{} cannot create network namespaces here: {e:#}",
                    crate::SKIP_PREFIX
                )
            } else {
                e
            }
        })?;
        let node = Node {
            netns: netns.clone(),
            ip: ip.clone(),
            parent_ip: parent_ip.clone(),
        };
        // Recorded now so that Drop deletes the namespace even if the wiring below fails.
        self.nodes.push(node.clone());
        ip_cmd(&["-n", &netns, "link", "set", "lo", "up"])?;
        match &parent {
            None => {
                let outer = format!("rmt{}l{k}", self.slot);
                ip_cmd(&[
                    "link", "add", &outer, "type", "veth", "peer", "name", "up0", "netns", &netns,
                ])?;
                ip_cmd(&["addr", "add", &format!("{parent_ip}/30"), "dev", &outer])?;
                ip_cmd(&["link", "set", &outer, "up"])?;
            }
            Some(parent) => {
                let outer = format!("dn{k}");
                ip_cmd(&[
                    "-n", parent, "link", "add", &outer, "type", "veth", "peer", "name", "up0",
                    "netns", &netns,
                ])?;
                ip_cmd(&[
                    "-n",
                    parent,
                    "addr",
                    "add",
                    &format!("{parent_ip}/30"),
                    "dev",
                    &outer,
                ])?;
                ip_cmd(&["-n", parent, "link", "set", &outer, "up"])?;
            }
        }
        ip_cmd(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{ip}/30"),
            "dev",
            "up0",
        ])?;
        ip_cmd(&["-n", &netns, "link", "set", "up0", "up"])?;
        set_no_forwarding(&netns)?;
        Ok(node)
    }

    fn cleanup(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        for node in self.nodes.drain(..).rev() {
            if let Err(e) = ip_cmd(&["netns", "del", &node.netns]) {
                if Path::new("/run/netns").join(&node.netns).exists() {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        if !errors.is_empty() {
            bail!("deleting namespaces: {}", errors.join("; "));
        }
        match fs::remove_file(&self.slot_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).context("freeing slot"),
            _ => Ok(()),
        }
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        let result = self.cleanup();
        if let Some(reaper) = self.reaper.take() {
            match result {
                Ok(()) => reaper.done(),
                Err(e) => {
                    eprintln!("remora-testkit: cleaning up net lab: {e:#}");
                    reaper.clean_up_now();
                }
            }
        }
    }
}

/// True when `ip` is reachable from this (the root) namespace's routing table, i.e. not through
/// the blackhole: `ip route get` fails for blackholed addresses.
pub fn routable_from_root(ip: &str) -> bool {
    Command::new("ip")
        .args(["route", "get", ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn set_no_forwarding(netns: &str) -> Result<()> {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "sh", "-c"])
        .arg("echo 0 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward")
        .stdin(Stdio::null())
        .output()
        .context("setting ip_forward")?;
    if !out.status.success() || String::from_utf8_lossy(&out.stdout).trim() != "0" {
        bail!(
            "net.ipv4.ip_forward=0 in {netns} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn add_blackhole_route() -> Result<()> {
    let out = Command::new("ip")
        .args(["route", "add", "blackhole", PRIVATE_RANGE, "metric", "4000"])
        .stdin(Stdio::null())
        .output()
        .context("running ip route add")?;
    if out.status.success() || String::from_utf8_lossy(&out.stderr).contains("File exists") {
        return Ok(());
    }
    bail!(
        "adding the blackhole route for {PRIVATE_RANGE} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// Claims the first free slot 1..=254: its file is created exclusively (with our pid inside) and
/// no root-namespace interface of that slot is left over.
fn claim_slot() -> Result<(u8, PathBuf)> {
    fs::create_dir_all(SLOT_DIR).with_context(|| format!("creating {SLOT_DIR}"))?;
    let leftovers: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for slot in 1..=254u8 {
        let prefix = format!("rmt{slot}l");
        if leftovers.iter().any(|n| n.starts_with(&prefix)) {
            continue;
        }
        let path = Path::new(SLOT_DIR).join(slot.to_string());
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                writeln!(f, "{}", std::process::id())?;
                return Ok((slot, path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    bail!("all 254 network slots in {SLOT_DIR} are taken (stale files from killed runs?)")
}

fn ip_cmd(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

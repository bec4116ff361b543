//! Cluster resource agents: OCF (Pacemaker) and heartbeat v1 `haresources`.

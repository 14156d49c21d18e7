//! The backends behind Services' fronts: NodePorts on node addresses,
//! watch deletions, pods that are not ready, and objects of the wrong
//! shape named without harm.

use std::net::SocketAddr;

use edgewise_ip_index::{Protocol, ServiceCatalog};

const OBJECTS: &str = r#"{"kind": "List", "items": [
  {"kind": "Node", "metadata": {"name": "n1"},
   "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                            {"type": "Hostname", "address": "n1"}]}},
  {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
   "status": {"phase": "Running", "podIP": "10.42.0.10",
              "conditions": [{"type": "Ready", "status": "True"}]}},
  {"kind": "Pod", "metadata": {"name": "web-2", "namespace": "shop", "labels": {"app": "web"}},
   "status": {"phase": "Running", "podIP": "10.42.0.11",
              "conditions": [{"type": "Ready", "status": "False"}]}},
  {"kind": "Pod", "metadata": {"name": "web-3", "namespace": "other", "labels": {"app": "web"}},
   "status": {"phase": "Running", "podIP": "10.42.0.12",
              "conditions": [{"type": "Ready", "status": "True"}]}},
  {"kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
   "spec": {"clusterIP": "10.43.0.1", "clusterIPs": ["10.43.0.1", "fd00::1"],
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}},
  {"kind": "Service", "metadata": {"name": "headless", "namespace": "shop"},
   "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}
]}"#;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn fronts_lead_to_ready_pods_of_the_namespace_on_cluster_ips_and_node_ports() {
    let mut catalog = ServiceCatalog::default();
    assert!(catalog.read(OBJECTS.as_bytes()).is_empty());
    let services = catalog.resolve();
    let expected = vec![addr("10.42.0.10:8080")];
    for (ip, port) in [("10.43.0.1", 80), ("fd00::1", 80), ("192.168.1.10", 30080)] {
        let front = services
            .front(ip.parse().unwrap(), port, Protocol::Tcp)
            .unwrap_or_else(|| panic!("{ip}:{port}"));
        assert_eq!(front.service, "shop/web");
        assert_eq!(front.backends, expected);
    }
    assert!(
        services
            .front("10.43.0.1".parse().unwrap(), 80, Protocol::Udp)
            .is_none()
    );
    assert_eq!(services.len(), 3, "a headless service has no front");
}

#[test]
fn a_deleted_pod_or_service_goes() {
    let mut catalog = ServiceCatalog::default();
    catalog.read(OBJECTS.as_bytes());
    catalog.read(
        br#"{"type": "DELETED", "object": {"kind": "Pod",
             "metadata": {"name": "web-1", "namespace": "shop"}, "status": {}}}"#,
    );
    let services = catalog.resolve();
    let front = services.front("10.43.0.1".parse().unwrap(), 80, Protocol::Tcp);
    assert!(front.unwrap().backends.is_empty());
    catalog.read(
        br#"{"type": "DELETED", "object": {"kind": "Service",
             "metadata": {"name": "web", "namespace": "shop"}}}"#,
    );
    assert!(catalog.resolve().is_empty());
}

#[test]
fn an_object_of_the_wrong_shape_is_named_and_changes_nothing() {
    let mut catalog = ServiceCatalog::default();
    catalog.read(OBJECTS.as_bytes());
    let problems = catalog.read(
        br#"{"kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
             "spec": {"ports": "eighty"}}"#,
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("shop/web"), "{problems:?}");
    assert_eq!(catalog.resolve().len(), 3, "the good service stays");
}

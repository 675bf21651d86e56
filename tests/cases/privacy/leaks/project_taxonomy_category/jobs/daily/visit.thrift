struct Visit {
  1: required string clinic
  2: optional string diagnosis (pii = "acme.health")
}

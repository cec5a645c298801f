extension Duration {
    /// The duration in seconds, for rates and log lines.
    package var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

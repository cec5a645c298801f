import Foundation
import Glibc

/// A notification that could not be sent to systemd.
public struct SystemdNotifyError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// sd_notify without libsystemd: each notification is one datagram of `KEY=VALUE` lines to the
/// socket systemd names in `$NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`).
public final class SystemdNotifier: Sendable {
    /// The socket as given in `NOTIFY_SOCKET`.
    public let socketName: String
    /// How often systemd expects a `WATCHDOG=1` at the latest (`WATCHDOG_USEC`), when it watches this process.
    public let watchdogInterval: Duration?

    private let descriptor: Int32
    private let address: sockaddr_un
    private let addressLength: socklen_t

    /// Nil when `NOTIFY_SOCKET` is unset or empty (not started by systemd, or not `Type=notify`).
    public init?(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let name = environment["NOTIFY_SOCKET"], !name.isEmpty else { return nil }
        guard name.hasPrefix("/") || name.hasPrefix("@") else {
            throw SystemdNotifyError(description: "NOTIFY_SOCKET '\(name)' is neither a path nor an @abstract name")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(name.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        if pathBytes[0] == UInt8(ascii: "@") {
            pathBytes[0] = 0  // Abstract namespace: a leading NUL, and the length covers the name exactly.
        } else {
            pathBytes.append(0)
        }
        guard pathBytes.count <= capacity else {
            throw SystemdNotifyError(description: "NOTIFY_SOCKET '\(name)' is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw SystemdNotifyError(description: "socket(AF_UNIX, SOCK_DGRAM): \(String(cString: strerror(errno)))")
        }
        self.socketName = name
        self.descriptor = descriptor
        self.address = address
        self.addressLength = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + pathBytes.count)
        self.watchdogInterval = Self.watchdogInterval(environment)
    }

    deinit { close(descriptor) }

    /// Half the watchdog interval, as systemd recommends for the ping period.
    public var watchdogPingPeriod: Duration? { watchdogInterval.map { $0 / 2 } }

    /// Sends `fields` (newline-separated `KEY=VALUE` assignments) as one datagram.
    public func send(_ fields: String) throws {
        let bytes = Array(fields.utf8)
        var address = self.address
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, addressLength) }
            }
        }
        guard sent == bytes.count else {
            throw SystemdNotifyError(description: "sd_notify to \(socketName): \(sent < 0 ? String(cString: strerror(errno)) : "short send")")
        }
    }

    /// Startup is finished (or a reload is): sockets bound and state loaded.
    public func ready() throws { try send("READY=1") }

    /// A one-line status shown by `systemctl status`.
    public func status(_ text: String) throws {
        try send("STATUS=" + text.replacingOccurrences(of: "\n", with: " "))
    }

    /// The watchdog keep-alive: send only while the service is actually making progress.
    public func watchdog() throws { try send("WATCHDOG=1") }

    /// A reload begins; `ready()` ends it. systemd matches the two by the monotonic timestamp.
    public func reloading() throws {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        try send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    /// Shutdown has begun.
    public func stopping() throws { try send("STOPPING=1") }

    /// `WATCHDOG_USEC`, unless `WATCHDOG_PID` names another process (the watchdog is then not ours).
    private static func watchdogInterval(_ environment: [String: String]) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let microseconds = UInt64(text), microseconds > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], pid_t(pid) != getpid() { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }
}

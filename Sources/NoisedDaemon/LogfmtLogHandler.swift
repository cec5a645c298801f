import Glibc
import Logging
import Synchronization

/// Writes one logfmt line per event to stderr: `ts=… level=… msg="…" key=value …`.
///
/// Under systemd (`JOURNAL_STREAM` set) each line starts with a `<N>` syslog priority, which
/// journald turns into the entry's priority, and the timestamp is left to journald.
public struct LogfmtLogHandler: LogHandler {
    /// Shared by every handler made from one bootstrap, so a reload changes the level everywhere.
    public final class Level: Sendable {
        private let value: Mutex<Logger.Level>
        public init(_ level: Logger.Level) { value = Mutex(level) }
        public var current: Logger.Level {
            get { value.withLock { $0 } }
            set { value.withLock { $0 = newValue } }
        }
    }

    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let journal: Bool
    private let level: Level

    private static let writeLock = Mutex(())

    public init(label: String, level: Level, environment: [String: String]) {
        self.label = label
        self.level = level
        self.journal = environment["JOURNAL_STREAM"] != nil
    }

    public var logLevel: Logger.Level {
        get { level.current }
        set { level.current = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = journal ? "<\(Self.syslogPriority(event.level))>" : "ts=\(Self.timestamp()) "
        line += "level=\(event.level) msg=\(Self.quote(event.message.description))"
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for key in merged.keys.sorted() {
            line += " \(key)=\(Self.quote("\(merged[key]!)"))"
        }
        line += "\n"
        Self.writeLock.withLock { _ in
            var bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 { if errno == EINTR { continue } else { break } }
                offset += n
            }
            bytes.removeAll()
        }
    }

    /// Quotes a logfmt value only when it needs it (spaces, quotes, `=` or emptiness).
    package static func quote(_ value: String) -> String {
        let plain = !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=") && $0 != 0x7f && $0 != UInt8(ascii: "\\") }
        if plain { return value }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    package static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// RFC 3339 UTC with milliseconds, without Foundation's formatters.
    package static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}

import Foundation
import Glibc
import ZeroMQ

/// A key file that cannot be written or read, naming the file (and line) at fault.
public struct KeyFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// CURVE key files as `noised keygen` writes them: `NAME.key` holds the Z85 secret key (mode 0600),
/// `NAME.pub` the Z85 public key (0644), each the key alone on one line.
public enum KeyFiles {
    public struct Written: Sendable {
        public let secretKeyPath: String
        public let publicKeyPath: String
        public let publicKey: String
    }

    /// Generates a keypair and writes `NAME.key` and `NAME.pub` in `directory`; an existing file
    /// of either name is never overwritten.
    public static func generate(name: String, directory: String) throws -> Written {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else {
            throw KeyFileError("key name '\(name)' must be non-empty, without '/', and not start with '.'")
        }
        let base = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        let secretPath = base + ".key", publicPath = base + ".pub"
        for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
            throw KeyFileError("\(path) exists; refusing to overwrite it")
        }
        let keys = try ZMQCurve.generateKeypair()
        try write(keys.secretKey + "\n", to: secretPath, mode: 0o600)
        do { try write(keys.publicKey + "\n", to: publicPath, mode: 0o644) } catch {
            // A secret without its public half would block the next keygen for nothing.
            unlink(secretPath)
            throw error
        }
        return Written(secretKeyPath: secretPath, publicKeyPath: publicPath, publicKey: keys.publicKey)
    }

    /// The server's keypair from its secret key file: the public key is derived from the secret.
    public static func loadSecretKey(path: String) throws -> (publicKey: String, secretKey: String) {
        let keys = try readKeys(path: path)
        guard keys.count == 1 else {
            throw KeyFileError("\(path): expected one Z85 secret key, found \(keys.count) keys")
        }
        let secret = keys[0].key
        return (try ZMQCurve.publicKey(forSecret: secret), secret)
    }

    /// The single Z85 public key of a `.pub` file.
    public static func loadPublicKey(path: String) throws -> String {
        let keys = try readKeys(path: path)
        guard keys.count == 1 else {
            throw KeyFileError("\(path): expected one Z85 public key, found \(keys.count) keys")
        }
        return keys[0].key
    }

    /// Every public key of the `*.pub` files of `directory` (each non-blank line one key).
    public static func loadAuthorizedKeys(directory: String) throws -> Set<String> {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw KeyFileError("authorized_keys_dir \(directory): cannot list it (\(error.localizedDescription))")
        }
        var keys = Set<String>()
        for name in names.sorted() where name.hasSuffix(".pub") {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            keys.formUnion(try readKeys(path: path).map(\.key))
        }
        return keys
    }

    /// The valid Z85 keys of a file with their line numbers; the first bad line is an error.
    private static func readKeys(path: String) throws -> [(line: Int, key: String)] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KeyFileError("\(path): cannot read it (\(error.localizedDescription))")
        }
        var keys: [(line: Int, key: String)] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            do { try ZMQCurve.validate(line) } catch {
                throw KeyFileError("\(path):\(index + 1): \(error)")
            }
            keys.append((index + 1, line))
        }
        if keys.isEmpty { throw KeyFileError("\(path): no key in the file") }
        return keys
    }

    /// Creates `path` exclusively with exactly `mode` (whatever the umask) and writes `text`;
    /// on failure nothing is left behind.
    private static func write(_ text: String, to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw KeyFileError("\(path): cannot create it (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard fchmod(fd, mode) == 0, written == bytes.count else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw KeyFileError("\(path): cannot write it (\(reason))")
        }
    }
}

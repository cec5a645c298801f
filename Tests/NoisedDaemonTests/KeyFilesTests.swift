import Foundation
import NoisedDaemon
import XCTest
import ZeroMQ

final class KeyFilesTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func mode(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    private func write(_ text: String, _ name: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    private func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    func testKeygenWritesAMatchingPairWithModes() throws {
        let written = try KeyFiles.generate(name: "trainer-1", directory: directory)
        XCTAssertEqual(written.secretKeyPath, directory + "/trainer-1.key")
        XCTAssertEqual(written.publicKeyPath, directory + "/trainer-1.pub")
        XCTAssertEqual(try mode(written.secretKeyPath), 0o600)
        XCTAssertEqual(try mode(written.publicKeyPath), 0o644)
        let pair = try KeyFiles.loadSecretKey(path: written.secretKeyPath)
        XCTAssertEqual(pair.publicKey, written.publicKey)
        XCTAssertEqual(try KeyFiles.loadPublicKey(path: written.publicKeyPath), written.publicKey)
        XCTAssertEqual(try ZMQCurve.publicKey(forSecret: pair.secretKey), written.publicKey)
    }

    func testKeygenRefusesToOverwrite() throws {
        let first = try KeyFiles.generate(name: "host", directory: directory)
        let before = try String(contentsOfFile: first.secretKeyPath, encoding: .utf8)
        XCTAssertEqual(message { try KeyFiles.generate(name: "host", directory: self.directory) },
                       "\(directory!)/host.key exists; refusing to overwrite it")
        XCTAssertEqual(try String(contentsOfFile: first.secretKeyPath, encoding: .utf8), before)
        // Only the public half left over still blocks, and no secret is written beside it.
        try FileManager.default.removeItem(atPath: first.secretKeyPath)
        XCTAssertEqual(message { try KeyFiles.generate(name: "host", directory: self.directory) },
                       "\(directory!)/host.pub exists; refusing to overwrite it")
        XCTAssertFalse(FileManager.default.fileExists(atPath: first.secretKeyPath))
    }

    func testKeygenRejectsBadNames() {
        for name in ["", "../x", ".hidden"] {
            XCTAssertTrue(message { try KeyFiles.generate(name: name, directory: self.directory) }.contains("key name"), name)
        }
    }

    func testAuthorizedKeysReadsEveryPubFileOnly() throws {
        let a = try KeyFiles.generate(name: "a", directory: directory)
        let b = try KeyFiles.generate(name: "b", directory: directory)
        let c = try ZMQCurve.generateKeypair()
        _ = try write("\n  \(c.publicKey)  \n\n", "c.pub")
        _ = try write("not a key at all", "notes.txt")
        // Secret key files beside them are not public keys and are not read.
        XCTAssertEqual(try KeyFiles.loadAuthorizedKeys(directory: directory), [a.publicKey, b.publicKey, c.publicKey])
    }

    func testBadKeysNameTheFileAndLine() throws {
        let good = try ZMQCurve.generateKeypair().publicKey
        let path = try write("\(good)\n\(good.dropLast())\n", "bad.pub")
        XCTAssertEqual(message { try KeyFiles.loadAuthorizedKeys(directory: self.directory) },
                       "\(path):2: invalid CURVE key: expected 40 Z85 characters, got 39")
        let empty = try write("\n", "empty.key")
        XCTAssertEqual(message { try KeyFiles.loadSecretKey(path: empty) }, "\(empty): no key in the file")
        let two = try write("\(good)\n\(good)\n", "two.key")
        XCTAssertEqual(message { try KeyFiles.loadSecretKey(path: two) }, "\(two): expected one Z85 secret key, found 2 keys")
        XCTAssertTrue(message { try KeyFiles.loadSecretKey(path: self.directory + "/missing.key") }
            .hasPrefix("\(directory!)/missing.key: cannot read it"))
        XCTAssertTrue(message { try KeyFiles.loadAuthorizedKeys(directory: self.directory + "/nope") }
            .hasPrefix("authorized_keys_dir \(directory!)/nope: cannot list it"))
    }
}

import Configuration
import NoisedDaemon
import XCTest

final class ConfigReloadTests: XCTestCase {
    private func curve(_ secret: String, _ directory: String) -> NoisedConfig {
        var config = NoisedConfig()
        config.security.curve = CurveConfig(secretKeyFile: secret, authorizedKeysDir: directory)
        return config
    }

    func testAChangeInsideCurveIsNamedByItsOwnKey() {
        let running = curve("/k/server.key", "/k/authorized")
        XCTAssertEqual(running.changedKeys(to: curve("/k/server.key", "/k/other")), ["security.curve.authorized_keys_dir"])
        XCTAssertEqual(running.changedKeys(to: curve("/k/new.key", "/k/authorized")), ["security.curve.secret_key_file"])
        XCTAssertEqual(running.changedKeys(to: NoisedConfig()), ["security.curve"])
        XCTAssertEqual(NoisedConfig().changedKeys(to: running), ["security.curve"])
        XCTAssertEqual(running.changedKeys(to: running), [])
    }

    func testTheAuthorizedKeysDirectoryIsAppliedAndNotCalledRestartOnly() {
        let running = curve("/k/server.key", "/k/authorized")
        var kept = curve("/k/server.key", "/k/other")
        let changed = running.changedKeys(to: kept)
        XCTAssertTrue(Set(changed).isDisjoint(with: NoisedConfig.restartOnlyKeys), "\(changed)")
        kept.keepRestartOnlyValues(from: running)
        XCTAssertEqual(kept.security.curve?.authorizedKeysDir, "/k/other")
    }

    func testTheKeyPairAndCurveItselfNeedARestart() {
        let running = curve("/k/server.key", "/k/authorized")
        var kept = curve("/k/new.key", "/k/other")
        for key in running.changedKeys(to: kept) where key != "security.curve.authorized_keys_dir" {
            XCTAssertTrue(NoisedConfig.restartOnlyKeys.contains(key), key)
        }
        kept.keepRestartOnlyValues(from: running)
        XCTAssertEqual(kept.security.curve, CurveConfig(secretKeyFile: "/k/server.key", authorizedKeysDir: "/k/other"))
        var off = NoisedConfig()
        XCTAssertTrue(NoisedConfig.restartOnlyKeys.contains(try XCTUnwrap(running.changedKeys(to: off).first)))
        off.keepRestartOnlyValues(from: running)
        XCTAssertEqual(off.security, running.security)
    }

    func testOtherKeysAreNamedByTheirPaths() {
        var new = NoisedConfig()
        new.input.endpoint = "ipc:///tmp/x"
        new.input.ackedEndpoint = nil
        new.output.highWaterMark = 3
        XCTAssertEqual(NoisedConfig().changedKeys(to: new), ["input.endpoint", "input.acked_endpoint", "output.high_water_mark"])
    }
}

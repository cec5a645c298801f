import Configuration
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import NoisedDaemon
import NoisedTools
import Schedule
import XCTest

final class ScheduleReportTests: XCTestCase {
    private func config(_ yaml: String) throws -> NoisedConfig { try NoisedConfig.parse(yaml: yaml) }

    private let curriculum = """
        schedule:
          interpolation: cosine
          curriculum:
            - {at_step: 0, distribution: logit_normal, mean: 1.5, std: 1, shift: 2}
            - {at_step: 4000, distribution: uniform}
            - {at_step: 10000, distribution: discrete, sigmas: [0.25, 0.75]}
        """

    func testDefaultStepsCoverEveryChange() throws {
        let schedule = try config(curriculum).schedule
        XCTAssertEqual(ScheduleReport.defaultSteps(for: schedule), [0, 2000, 4000, 7000, 10000, 11000])
        XCTAssertEqual(ScheduleReport.defaultSteps(for: NoisedConfig().schedule), [0, 500, 1000, 1100])
        let single = try config("schedule: {curriculum: [{at_step: 0, distribution: uniform}]}").schedule
        XCTAssertEqual(ScheduleReport.defaultSteps(for: single), [0, 1000])
        XCTAssertEqual(ScheduleReport(schedule: single, steps: [30, 5, 30]).steps, [5, 30])
    }

    func testTerminalRowsCarryTheQuantiles() throws {
        let report = ScheduleReport(schedule: try config(curriculum).schedule)
        let text = report.terminal()
        let rows = text.split(separator: "\n").filter { $0.contains("|") }
        XCTAssertEqual(rows.count, report.steps.count)
        let median = report.distribution(atStep: 2000).quantile(0.5)
        let row = try XCTUnwrap(rows.first { $0.hasPrefix("     2000 ") })
        XCTAssertTrue(row.contains(String(format: "%.3f", median)), String(row))
        XCTAssertTrue(rows.first { $0.contains("4000*") } != nil, "keyframes are starred:\n\(text)")
        // The uniform keyframe's bar is flat and full; the discrete one's has two spikes.
        XCTAssertTrue(row.contains("|"))
        let uniformBar = try XCTUnwrap(rows.first { $0.contains("4000*") }?.split(separator: "|")[1])
        XCTAssertEqual(Set(uniformBar), ["█"])
        let discreteBar = try XCTUnwrap(rows.first { $0.contains("11000 ") }?.split(separator: "|")[1])
        XCTAssertEqual(discreteBar.filter { $0 != " " }.count, 2)
    }

    func testCSVDensitiesIntegrateToOnePerStep() throws {
        let report = ScheduleReport(schedule: try config(curriculum).schedule)
        let rows = report.csv(bins: 50).split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        XCTAssertEqual(rows.count, 50 * report.steps.count)
        var integrals: [Int64: Double] = [:]
        for row in rows {
            XCTAssertEqual(row.count, 3)
            integrals[Int64(row[0])!, default: 0] += Double(row[2])! / 50
        }
        XCTAssertEqual(Set(integrals.keys), Set(report.steps))
        for (step, integral) in integrals { XCTAssertEqual(integral, 1, accuracy: 1e-4, "step \(step)") }
    }

    func testSVGIsWellFormedWithAxesAndKeyframes() throws {
        for yaml in [curriculum, "", "schedule: {curriculum: [{at_step: 0, distribution: uniform}]}",
                     "schedule:\n  sigma_min: 0.5\n  sigma_max: 0.5"] {
            let report = ScheduleReport(schedule: try config(yaml).schedule)
            let svg = report.svg(title: "a <test> & title")
            let collector = ElementCollector()
            let parser = XMLParser(data: Data(svg.utf8))
            parser.delegate = collector
            XCTAssertTrue(parser.parse(), "SVG does not parse: \(String(describing: parser.parserError))\n\(svg.prefix(500))")
            XCTAssertEqual(collector.elements.first, "svg")
            XCTAssertTrue(collector.texts.contains("training step"))
            XCTAssertTrue(collector.texts.contains("σ (0 = data, 1 = noise)"))
            XCTAssertTrue(collector.texts.contains("a <test> & title"))
            XCTAssertEqual(collector.classes["keyframe", default: 0], report.schedule.keyframes.count, yaml)
            XCTAssertEqual(collector.classes["keyframe-label", default: 0], report.schedule.keyframes.count)
            XCTAssertGreaterThanOrEqual(collector.classes["tick", default: 0], 6)
            XCTAssertEqual(collector.classes["median", default: 0], 1)
        }
        let labels = ElementCollector()
        let parser = XMLParser(data: Data(ScheduleReport(schedule: try config(curriculum).schedule).svg(title: "t").utf8))
        parser.delegate = labels
        XCTAssertTrue(parser.parse())
        for label in ["k0 @0: logit_normal, shift 2.00", "k1 @4000: uniform", "k2 @10000: discrete", "6000", "10000"] {
            XCTAssertTrue(labels.texts.contains(label), "missing \(label) in \(labels.texts)")
        }
    }

    func testProposalFromAWarmState() throws {
        let config = try config("""
            steps: {source: feedback}
            feedback: {endpoint: 'tcp://127.0.0.1:5557'}
            schedule:
              curriculum: [{at_step: 0, distribution: uniform}]
              adaptive: {enabled: true, bins: 4, history: 2}
            """)
        var state = DaemonState()
        state.batches = 10
        XCTAssertEqual(ScheduleReport.step(config: config, state: state), 10, "batches count until the first report")
        state.reportedStep = 777
        var history = LossHistory(bins: 4, history: 2)
        for (sigma, loss) in [(0.1, 1.0), (0.1, 1.0), (0.3, 1.0), (0.3, 1.0), (0.6, 1.0), (0.6, 1.0), (0.9, 7.0), (0.9, 7.0)] {
            history.record(sigma: sigma, loss: loss, sigmaMin: 0, sigmaMax: 1)
        }
        state.lossHistory = history
        let text = ScheduleReport.proposal(config: config, state: state)
        XCTAssertTrue(text.hasPrefix("state at step 777 (steps.source feedback): 8 loss reports, adaptive on, history warm, proposal adapted"), text)
        let lines = text.split(separator: "\n")
        // Bin 3 (loss 7): q = 0.99·(0.5 + 0.5·7/2.5)·0.25 + 0.01/4 = 0.4728.
        let lastBin = try XCTUnwrap(lines.first { $0.hasPrefix("   3  0.750-1.000") })
        XCTAssertTrue(lastBin.contains("0.2500") && lastBin.contains("0.4728") && lastBin.contains("7.0000"), String(lastBin))
        XCTAssertTrue(lines.contains { $0.hasPrefix("curriculum") && $0.contains("0.500") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("  proposal") })

        state.lossHistory = nil
        XCTAssertTrue(ScheduleReport.proposal(config: config, state: state).contains("history warming up, proposal = curriculum"))
    }

    func testToolWritesFilesAndNamesBadOnes() throws {
        let directory = NSTemporaryDirectory() + "noised-schedule-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try curriculum.write(toFile: directory + "/c.yaml", atomically: true, encoding: .utf8)
        var options = ScheduleTool.Options(configPath: directory + "/c.yaml")
        options.svgPath = directory + "/c.svg"
        options.csvPath = directory + "/c.csv"
        options.steps = [0, 100]
        let output = try ScheduleTool.run(options)
        XCTAssertTrue(output.contains("wrote \(directory)/c.svg"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/c.svg"))
        XCTAssertEqual(try String(contentsOfFile: directory + "/c.csv", encoding: .utf8).split(separator: "\n").count, 201)
        options.svgPath = directory + "/missing/dir/c.svg"
        XCTAssertThrowsError(try ScheduleTool.run(options)) { XCTAssertTrue("\($0)".contains("missing/dir/c.svg"), "\($0)") }
    }

    func testWithOutputsTheToolShowsTheOutputAskedFor() throws {
        let directory = NSTemporaryDirectory() + "noised-schedule-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            outputs:
              - {name: high, endpoint: 'ipc:///tmp/h', schedule: {sigma_min: 0.875, sigma_max: 1.0}}
              - {name: low, endpoint: 'ipc:///tmp/l', schedule: {sigma_min: 0.0, sigma_max: 0.875}}
            """.write(toFile: directory + "/o.yaml", atomically: true, encoding: .utf8)
        var options = ScheduleTool.Options(configPath: directory + "/o.yaml")
        XCTAssertThrowsError(try ScheduleTool.run(options)) { XCTAssertTrue("\($0)".contains("pick one with --output"), "\($0)") }
        options.output = "high"
        XCTAssertTrue(try ScheduleTool.run(options).hasPrefix("sigma in [0.875, 1.000]"))
        options.output = "low"
        XCTAssertTrue(try ScheduleTool.run(options).hasPrefix("sigma in [0.000, 0.875]"))
        options.output = "mid"
        XCTAssertThrowsError(try ScheduleTool.run(options)) { XCTAssertTrue("\($0)".contains("outputs are high, low"), "\($0)") }
    }
}

/// Element names, text content and class attribute counts of a parsed document.
private final class ElementCollector: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var texts: [String] = []
    var classes: [String: Int] = [:]
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append(elementName)
        if let name = attributes["class"] { classes[name, default: 0] += 1 }
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        if elementName == "text" { texts.append(text.trimmingCharacters(in: .whitespaces)) }
        text = ""
    }
}

import Foundation

/// Runs a program to completion and returns its exit status and what it printed.
package enum ChildProcess {
    package struct Result: Sendable {
        package let status: Int32
        package let output: String
        package let error: String
    }

    /// Both pipes are drained at once (stderr on its own thread): reading one to its end first would
    /// leave a child that fills the other pipe blocked forever.
    package static func run(_ executable: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let errorText = ErrorText()
        let reader = Thread { errorText.value = error.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return Result(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
                      error: String(decoding: errorText.value, as: UTF8.self))
    }

    /// Written by the reader thread only, read after it finished.
    // @unchecked: written by the reader thread only, and read after that thread is joined.
    private final class ErrorText: @unchecked Sendable {
        var value = Data()
    }
}

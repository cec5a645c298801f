import ArgumentParser
import NoiseKernel
import NoiseKernelCore
import NoisedBenchmarks

// Typed option values: each parses and explains itself once, so commands hold no parsing code.

extension ElementType: ExpressibleByArgument {}
extension NoiseKernel.Implementation: ExpressibleByArgument {}
extension PipelineBench.Transport: ExpressibleByArgument {}
extension CouplingMethod: ExpressibleByArgument {}

/// A latent shape, batch first: positive dimensions separated by commas ("2,12,28,60,106").
struct Shape: ExpressibleByArgument, CustomStringConvertible {
    let dimensions: [Int]

    init(_ dimensions: [Int]) { self.dimensions = dimensions }

    init?(argument: String) {
        let dimensions = argument.split(separator: ",", omittingEmptySubsequences: false)
            .map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !dimensions.isEmpty, dimensions.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        self.dimensions = dimensions.map { $0! }
    }

    var description: String { dimensions.map(String.init).joined(separator: ",") }
    var defaultValueDescription: String { description }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// A kernel bench case's input and output dtypes, "IN:OUT" (for example "f16:f32").
struct DTypePair: ExpressibleByArgument, CustomStringConvertible {
    let input: ElementType
    let output: ElementType

    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, let input = ElementType(rawValue: parts[0]), let output = ElementType(rawValue: parts[1]) else {
            return nil
        }
        (self.input, self.output) = (input, output)
    }

    var description: String { "\(input.rawValue):\(output.rawValue)" }
}

/// Values separated by commas ("1,2", "ipc,tcp"), each parsed as `Element`.
struct CommaList<Element: ExpressibleByArgument>: ExpressibleByArgument, CustomStringConvertible {
    let values: [Element]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
            .map { String($0.trimmingCharacters(in: .whitespaces)) }
        var values: [Element] = []
        for part in parts {
            guard let value = Element(argument: part) else { return nil }
            values.append(value)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }

    var description: String { values.map { "\($0)" }.joined(separator: ",") }
}

import NoisedProtocol
import ZeroMQ

extension Pipeline {
    /// Takes one request queued on the acknowledged input (`socket`, a ROUTER) and answers it:
    /// ok with the output's seq once the output socket took the batch, rejected with the reason,
    /// or unsent when the drain ran out first. False when nothing was queued.
    func takeAcked(from socket: ZMQSocket) throws -> Bool {
        // The identity the ROUTER prefixes, the ticket, the batch.
        guard let (frames, dropped) = try socket.receiveFrames(maxFrames: 3, dontWait: true) else { return false }
        beat()
        let identity = frames[0].array
        let ticketed = frames.count > 1 && frames[1].count == AckEnvelope.ticketBytes
        let ticket = ticketed ? frames[1].array : []
        guard ticketed, frames.count == 3, dropped == 0 else {
            summary.received += 1
            metrics.batchesIn.increment()
            let error = ProtocolError(
                .badEnvelope, "an acknowledged request is 2 frames, an 8-byte ticket then the batch; got "
                    + "\(frames.count - 1 + dropped) frame(s)\(frames.count > 1 ? ", the first of \(frames[1].count) bytes" : "")")
            record(error)
            reply(on: socket, to: identity, ticket: ticket, .rejected(reason: error.reason.rawValue, detail: error.detail))
            return true
        }
        switch try handle(frames[2]) {
        case .queued(let seq):
            reply(on: socket, to: identity, ticket: ticket, .ok(seq: seq))
        case .rejected(let error):
            record(error)
            reply(on: socket, to: identity, ticket: ticket, .rejected(reason: error.reason.rawValue, detail: error.detail))
        case .unsent:
            reply(on: socket, to: identity, ticket: ticket, .unsent(
                detail: "the daemon stopped (shutdown.drain_seconds ran out) before the output queue had room for this batch; send it again"))
        }
        return true
    }

    /// A ROUTER drops a reply to a peer that is gone or not reading; the producer then times out
    /// and decides, as for a reply lost with the daemon.
    private func reply(on socket: ZMQSocket, to identity: [UInt8], ticket: [UInt8], _ reply: AckReply) {
        metrics.acknowledgements(status: reply.status).increment()
        do {
            if try !socket.send(parts: [identity, ticket, reply.encoded], dontWait: true) {
                metrics.acknowledgements(status: "dropped").increment()
            }
        } catch {
            metrics.acknowledgements(status: "dropped").increment()
            logger.debug("cannot send an acknowledgement", metadata: ["error": "\(error)"])
        }
    }
}

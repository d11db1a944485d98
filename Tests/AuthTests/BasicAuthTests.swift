import Auth
import Foundation
import Registry
import Storage
import Locks
import Testing

@Suite struct BasicAuthTests {
    @Test func htpasswdUsersLogInWithTheirPasswordOnly() throws {
        let fixture = AuthFixture()
        let auth = try fixture.service()
        #expect(auth.authenticate(.basic(user: "alice", password: "alice-pw"), client: "10.0.0.1").identity?.user == "alice")
        #expect(auth.authenticate(.basic(user: "alice", password: "bob-pw"), client: "10.0.0.1").error?.code == .unauthorized)
        #expect(auth.authenticate(.basic(user: "carol", password: "alice-pw"), client: "10.0.0.2").error?.code == .unauthorized)
        #expect(auth.authenticate(.basic(user: "alice", password: ""), client: "10.0.0.3").error?.code == .unauthorized)
    }

    @Test func successIsCachedUntilTheFileChangesAndFailuresNeverAre() throws {
        let fixture = AuthFixture()
        let auth = try fixture.service()
        let login = Credentials.basic(user: "alice", password: "alice-pw")
        #expect(auth.authenticate(login, client: nil).identity != nil)
        // A cached check takes no bcrypt: far below the cost-4 hash's time, many times over.
        let start = ContinuousClock.now
        for _ in 0..<2000 { _ = auth.authenticate(login, client: nil) }
        #expect(ContinuousClock.now - start < .seconds(1))

        // A new password in the file: the cached old one stops working at once.
        fixture.writeUsers(["alice": "new-pw"])
        #expect(auth.authenticate(login, client: nil).error?.code == .unauthorized)
        #expect(auth.authenticate(.basic(user: "alice", password: "new-pw"), client: nil).identity?.user == "alice")
        // The cache expires after its TTL too (then a bcrypt runs again, and still succeeds).
        fixture.advance(61)
        #expect(auth.authenticate(.basic(user: "alice", password: "new-pw"), client: nil).identity?.user == "alice")
    }

    @Test func repeatedFailuresAreSlowedPerAddressAndPerUser() throws {
        let fixture = AuthFixture()
        let auth = try fixture.service()
        for _ in 0..<5 {
            #expect(auth.authenticate(.basic(user: "alice", password: "guess"), client: "192.0.2.1").error?.code == .unauthorized)
        }
        // Now refused without checking: even the right password, from the same address…
        let refused = auth.authenticate(.basic(user: "alice", password: "alice-pw"), client: "192.0.2.1").error
        #expect(refused?.code == .tooManyRequests)
        #expect(refused?.headers.contains { $0.name == "Retry-After" && Int($0.value) ?? 0 >= 1 } == true)
        // …for another user from that address, and for that user from elsewhere.
        #expect(auth.authenticate(.basic(user: "bob", password: "bob-pw"), client: "192.0.2.1").error?.code == .tooManyRequests)
        #expect(auth.authenticate(.basic(user: "alice", password: "alice-pw"), client: "198.51.100.7").error?.code == .tooManyRequests)
        // Others are untouched; and after the delay the right password works and clears it.
        #expect(auth.authenticate(.basic(user: "bob", password: "bob-pw"), client: "198.51.100.7").identity?.user == "bob")
        fixture.advance(2)
        #expect(auth.authenticate(.basic(user: "alice", password: "alice-pw"), client: "192.0.2.1").identity?.user == "alice")
        #expect(auth.authenticate(.basic(user: "alice", password: "guess"), client: "192.0.2.1").error?.code == .unauthorized)
    }

    @Test func aFloodOfLoginsWaitsForTheHashCheckCapAndABurstOfOneCredentialIsCheckedOnce() throws {
        // Unknown users, each from its own address: no throttle applies, each costs a decoy
        // bcrypt (cost 10); with one slot and no wait, those that find it busy get 429.
        let fixture = AuthFixture(users: ["alice": "alice-pw"], cost: 10)
        let auth = try fixture.service { $0.concurrentHashChecks = 1; $0.hashCheckWaitMilliseconds = 0 }
        let outcomes = Locked<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 30) { index in
            let status = auth.authenticate(.basic(user: "user\(index)", password: "guess"), client: "203.0.113.\(index)").error?.status
            outcomes.withLock { $0.append(status ?? 200) }
        }
        let statuses = outcomes.withLock { $0 }
        #expect(statuses.contains(429), "\(statuses)")
        #expect(statuses.contains(401), "\(statuses)")
        // A burst of one good credential, waiting for the slot: one bcrypt, the rest find it cached.
        let patient = try fixture.service { $0.concurrentHashChecks = 1 }
        let start = ContinuousClock.now
        let good = Locked<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            if patient.authenticate(.basic(user: "alice", password: "alice-pw"), client: "198.51.100.1").identity != nil {
                good.withLock { $0 += 1 }
            }
        }
        #expect(good.withLock { $0 } == 16)
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func groupsComeFromPolicyLinesAndFromCredentials() throws {
        let policy = try AccessPolicy(text: """
            group ci   bob robot-1
            @ci        ci/**     read,write
            @admins    **        read,write,delete
            """)
        let name = try #require(RepositoryName("ci/app"))
        #expect(policy.permits(Identity(user: "bob"), .write, on: name))
        #expect(!policy.permits(Identity(user: "alice"), .read, on: name))
        #expect(policy.permits(Identity(user: "alice", groups: ["admins"]), .delete, on: name))
        #expect(!policy.permits(Identity(user: "bob"), .delete, on: name))
        #expect(!policy.permits(nil, .read, on: name))
        #expect(throws: AccessPolicy.ParseError.self) { try AccessPolicy(text: "group @x a") }
    }
}

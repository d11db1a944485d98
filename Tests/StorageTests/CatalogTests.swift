#if canImport(Glibc)
import Glibc
#endif
import Storage
import Testing

/// The catalog is cached per `RepositoryStore` and checked against `_berth/catalog-stamp`.
@Suite struct CatalogTests {
    /// Sets the stamp's modification time back, so the cache treats it as settled.
    func settleStamp(_ fixture: StoreFixture) {
        var times = [timespec(tv_sec: time(nil) - 60, tv_nsec: 0), timespec(tv_sec: time(nil) - 60, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, "\(fixture.layout.root)/_berth/catalog-stamp", &times, 0) == 0)
    }

    @Test func aRepositoryCreatedElsewhereShowsAtOnceInACachedCatalog() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let serving = fixture.repositories  // one long-lived instance, as the worker's
        try fixture.repositories.create(fixture.name("team/one"))
        settleStamp(fixture)
        #expect(try serving.catalog().map(\.value) == ["team/one"])

        // The cached list is what answers while the stamp is unchanged...
        try removeLayoutMarkerByHand(fixture, "team/one")
        #expect(try serving.catalog().map(\.value) == ["team/one"])
        // ...and a creation by another process (another instance) shows at once, taken
        // in from the stamp without walking the store (the hand removal shows at the next
        // full walk, within `CatalogCache.maximumAge` seconds).
        try fixture.otherProcess().repositories.create(fixture.name("team/two"))
        #expect(try serving.catalog().map(\.value) == ["team/one", "team/two"])
    }

    @Test func creationsElsewhereAreTakenInWithoutAWalkAndTooManyOfThemCauseOne() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let serving = fixture.repositories
        try serving.create(fixture.name("a"))
        #expect(try serving.catalog().map(\.value) == ["a"])
        // Creations by another instance are taken in from the stamp, without a walk: "hand",
        // whose layout marker is removed by hand right after, is still listed.
        let other = fixture.otherProcess().repositories
        try other.create(fixture.name("hand"))
        #expect(unlink(fixture.layout.layoutFile(fixture.name("hand"))) == 0)
        try other.create(fixture.name("m/1"))
        try other.create(fixture.name("c"))
        #expect(try serving.catalog().map(\.value) == ["a", "c", "hand", "m/1"])
        // More creations than the stamp remembers: the cache walks the store again.
        for number in 0..<70 { try other.create(fixture.name("n/\(number)")) }
        let names = try serving.catalog().map(\.value)
        #expect(names.count == 73)
        #expect(!names.contains("hand"))
        #expect(names == names.sorted())
    }

    /// Removes a repository's `oci-layout` by hand (as an operator might), without the stamp.
    func removeLayoutMarkerByHand(_ fixture: StoreFixture, _ name: String) throws {
        #expect(unlink(fixture.layout.layoutFile(fixture.name(name))) == 0)
    }
}

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
        // ...and a creation by another process (another instance) replaces the stamp.
        try fixture.otherProcess().repositories.create(fixture.name("team/two"))
        #expect(try serving.catalog().map(\.value) == ["team/two"])
    }

    /// Removes a repository's `oci-layout` by hand (as an operator might), without the stamp.
    func removeLayoutMarkerByHand(_ fixture: StoreFixture, _ name: String) throws {
        #expect(unlink(fixture.layout.layoutFile(fixture.name(name))) == 0)
    }
}

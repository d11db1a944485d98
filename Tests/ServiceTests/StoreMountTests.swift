@testable import BerthService
import Testing

/// The mount check of `berth serve`: the mount is found under the store, node-local locks
/// are refused with the option named, caches that make nodes disagree are warned about.
@Suite struct StoreMountTests {
    static let mounts = """
        /dev/sda1 / ext4 rw,relatime 0 0
        server:/export /srv/nfs nfs4 rw,relatime,vers=4.2,local_lock=flock,lookupcache=positive,addr=10.0.0.1 0 0
        server:/export /srv/nfs-ok nfs4 rw,relatime,vers=4.2,local_lock=none,lookupcache=positive 0 0
        server:/old /srv/v3 nfs rw,nolock,vers=3 0 0
        127.0.0.2:berth /srv/my\\040store fuse.glusterfs rw,relatime,user_id=0,allow_other 0 0
        """

    @Test func theLongestMountPointAboveTheStoreIsItsMount() {
        let parsed = StoreMount.parse(Self.mounts)
        #expect(parsed.count == 5)
        #expect(StoreMount.containing("/srv/nfs/berth", in: parsed)?.type == "nfs4")
        #expect(StoreMount.containing("/srv/nfs-ok", in: parsed)?.mountPoint == "/srv/nfs-ok")
        #expect(StoreMount.containing("/srv/nfsx", in: parsed)?.mountPoint == "/")
        #expect(StoreMount.containing("/srv/my store/a", in: parsed)?.type == "fuse.glusterfs")
    }

    @Test func nodeLocalNFSLocksAreRefusedWithTheOptionNamed() throws {
        let parsed = StoreMount.parse(Self.mounts)
        let local = try #require(StoreMount.containing("/srv/nfs/berth", in: parsed)).verdict()
        #expect(local.refusals.count == 1 && local.refusals[0].contains("local_lock=flock"))
        #expect(local.warnings.isEmpty)
        let good = try #require(StoreMount.containing("/srv/nfs-ok", in: parsed)).verdict()
        #expect(good.refusals.isEmpty && good.warnings.isEmpty)
        let old = try #require(StoreMount.containing("/srv/v3/x", in: parsed)).verdict()
        #expect(old.refusals.contains { $0.contains("nolock") })
        #expect(old.warnings.contains { $0.contains("lookupcache") })
        #expect(try #require(StoreMount.containing("/var/lib/berth", in: parsed)).verdict() == StoreMount.Verdict())
    }

    @Test func glusterFSWithClientCachesIsWarnedAbout() throws {
        let mount = try #require(StoreMount.containing("/srv/my store", in: StoreMount.parse(Self.mounts)))
        let log = """
            [2026-12-02 03:10:00] I [MSGID: 101190] Final graph:
              1: volume berth-md-cache
              2:     type performance/md-cache
              3: volume berth-io-threads
              4:     type performance/io-threads
            [2026-12-02 03:11:00] I Final graph:
              1: volume berth-open-behind
              2:     type performance/open-behind
              3:     type performance/io-threads
            """
        #expect(GlusterClient.cacheTranslators(inLog: log) == ["open-behind"])
        let loose = mount.verdict(client: GlusterClient(arguments: ["glusterfs", "--volfile-id=berth", "/srv/my store"],
                                                        cacheTranslators: ["open-behind"]))
        #expect(loose.refusals.isEmpty)
        #expect(loose.warnings.count == 2)
        #expect(loose.warnings.first?.contains("--fopen-keep-cache=off") == true)
        let strict = mount.verdict(client: GlusterClient(arguments: ["glusterfs"] + GlusterClient.strictArguments + ["/srv/my store"],
                                                         cacheTranslators: []))
        #expect(strict == StoreMount.Verdict())
    }
}

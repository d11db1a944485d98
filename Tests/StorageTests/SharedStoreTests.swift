#if canImport(Glibc)
import Glibc
#endif
import Storage
import Testing
import TestSupport

/// What a shared store needs of a node: a file that cannot be looked at never passes
/// for a missing one, the startup self-test passes on a sound filesystem and leaves
/// nothing behind, and the store's clock agrees with the filesystem's stamps.
@Suite struct SharedStoreTests {
    @Test func anIndexThatCannotBeLookedAtFailsInsteadOfReadingAsEmpty() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("team/app")
        let body = try fixture.imageManifest(in: "team/app")
        _ = try fixture.manifests.put(body, contentType: MediaType.ociManifest, reference: .tag(Tag("v1")!), repository: repo)
        let path = fixture.layout.indexFile(repo)
        let saved = "\(path).saved"
        #expect(rename(path, saved) == 0)
        // A path whose lookup fails (ELOOP here, ESTALE on a shared filesystem).
        #expect(symlink("index.json", path) == 0)
        for store in [fixture.store, fixture.otherProcess()] {
            #expect(throws: StorageError.self) { try store.manifests.tags(of: repo) }
            #expect(throws: StorageError.self) {
                try store.manifests.put(body, contentType: MediaType.ociManifest, reference: .tag(Tag("v2")!), repository: repo)
            }
        }
        #expect(unlink(path) == 0 && rename(saved, path) == 0)
        #expect(try fixture.otherProcess().manifests.tags(of: repo) == ["v1"])
        #expect(try fixture.manifests.tags(of: repo) == ["v1"])
    }

    @Test func selfTestPassesOnALocalFilesystemAndLeavesNothingBehind() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        try StoreSelfTest.run(layout: fixture.layout)
        try StoreSelfTest.run(layout: fixture.layout)
        #expect(FileSystemHelpers.entries(fixture.layout.temporaryDirectory).isEmpty)
    }

    @Test(.enabled(if: getuid() == 0, "needs root to mount a small tmpfs")) func aFullStoreMakesTheSelfTestInconclusiveNotFailed() throws {
        let directory = TemporaryDirectory(prefix: "berth-full")
        defer { directory.remove() }
        guard Shell.run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", directory.path]).succeeded else {
            Issue.record("cannot mount a tmpfs")
            return
        }
        defer { Shell.run("umount", [directory.path]) }
        let layout = StoreLayout(root: directory.path)
        try StoreSelfTest.run(layout: layout)
        // Fill it to the last block.
        let filler = open("\(directory.path)/filler", O_WRONLY | O_CREAT, 0o644)
        #expect(filler >= 0)
        let block = [UInt8](repeating: 7, count: 4096)
        while block.withUnsafeBytes({ write(filler, $0.baseAddress, $0.count) }) > 0 {}
        close(filler)
        do {
            try StoreSelfTest.run(layout: layout)
            Issue.record("the self-test passed on a full store")
        } catch {
            #expect(error.inconclusive, "\(error)")
        }
    }

    @Test func theStoreClockReadsTheFilesystemsStamps() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let offset = try fixture.store.clock.measureOffset()
        // The same machine: the filesystem stamps with this clock (coarse ticks only).
        #expect(abs(offset) < 1_000_000_000)
        #expect(abs(fixture.store.clock.now() - Int(time(nil))) <= 1)
        #expect(FileSystemHelpers.entries(fixture.layout.temporaryDirectory).isEmpty)
    }
}

enum FileSystemHelpers {
    static func entries(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

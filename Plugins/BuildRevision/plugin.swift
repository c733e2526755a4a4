import Foundation
import PackagePlugin

/// Embeds the package's git revision in the target it is applied to (`MLOpsExporter`: `mlops_exporter_build_info`'s
/// `revision`): before every build, a shell reads `git rev-parse HEAD` of the package's directory and writes
/// `BuildRevision.swift` (`enum BuildRevision { static let value = "…" }`), replacing it only when its text changes,
/// so that a build at the same commit compiles nothing again.
///
/// `unknown` when the package directory is not the top of a git work tree of its own (a tarball, a copy inside another
/// repository), when git is missing or refuses the repository (another user's, without `safe.directory`), or when the
/// shell cannot run (a sandbox that forbids it): the build never fails for want of a revision. A package that depends
/// on this one gets the revision of its checkout (SwiftPM's dependency checkouts are git work trees).
@main
struct BuildRevision: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        return [
            .prebuildCommand(
                displayName: "Reading the git revision of \(context.package.directoryURL.path)",
                executable: URL(filePath: "/bin/sh"),
                arguments: ["-c", Self.script, "build-revision", context.package.directoryURL.path, output.path],
                outputFilesDirectory: output)
        ]
    }

    /// `$1`: the package directory; `$2`: the directory of the generated file. Exits 0 whatever git says.
    static let script = #"""
        package="$1"; out="$2/BuildRevision.swift"
        mkdir -p "$2" || exit 0
        revision=unknown
        top=$(git -C "$package" rev-parse --show-toplevel 2>/dev/null) \
          && [ "$(cd "$top" 2>/dev/null && pwd -P)" = "$(cd "$package" 2>/dev/null && pwd -P)" ] \
          && head=$(git -C "$package" rev-parse --verify --quiet HEAD 2>/dev/null) \
          && case "$head" in *[!0-9a-f]* | "") false ;; *) true ;; esac \
          && revision="$head"
        text="// Generated before each build by the BuildRevision plugin (Plugins/BuildRevision): do not edit.
        enum BuildRevision { static let value = \"$revision\" }"
        if [ "$(cat "$out" 2>/dev/null)" != "$text" ]; then
          printf '%s\n' "$text" > "$out.tmp" && mv -f "$out.tmp" "$out"
        fi
        exit 0
        """#
}

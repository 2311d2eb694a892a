//! The page's files, embedded gzip-compressed.

/// One file of the page, stored gzip-compressed (`make web`).
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub gzip: &'static [u8],
}

pub const ASSETS: [Asset; 3] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        gzip: include_bytes!("../../../../web/index.html.gz"),
    },
    Asset {
        path: "/mwan.css",
        content_type: "text/css; charset=utf-8",
        gzip: include_bytes!("../../../../web/mwan.css.gz"),
    },
    Asset {
        path: "/mwan.js",
        content_type: "text/javascript; charset=utf-8",
        gzip: include_bytes!("../../../../web/mwan.js.gz"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::*;

    /// The embedded .gz files are the page as it is in web/ (`make web`).
    #[test]
    fn embedded_page_matches_its_source() {
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
        for (asset, source) in ASSETS.iter().zip(["index.html", "mwan.css", "mwan.js"]) {
            let out = pipe("gzip", &["-dc"], asset.gzip);
            let want = std::fs::read(web.join(source)).unwrap_or_else(|e| panic!("{source}: {e}"));
            assert!(
                out.stdout == want,
                "web/{source}.gz is stale: run `make web`"
            );
        }
        let total: usize = ASSETS.iter().map(|a| a.gzip.len()).sum();
        assert!(
            total <= 40 * 1024,
            "page is {total} bytes gzipped, over 40 KB"
        );
        // No inline script or style: the CSP would block them.
        let html = std::fs::read_to_string(web.join("index.html")).unwrap_or_default();
        assert!(
            !html.contains("<script>") && !html.contains("<style") && !html.contains(" style=")
        );
    }
}

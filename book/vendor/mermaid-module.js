// sphinxcontrib-mermaid does `import mermaid from "<url>"`. The vendored mermaid.min.js is the
// single-file build (a classic script that sets globalThis.mermaid), 2.7 MB instead of the
// 13 MB of chunks of the ES module build: load it once as a script and re-export it.
// Hand-written (a .js name, so any server sends a JavaScript type); tools/vendor_book_js.py
// rewrites only mathjax/ and mermaid/.
if (!globalThis.mermaid) {
  await new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = new URL("./mermaid/mermaid.min.js", import.meta.url).href;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${script.src}`));
    document.head.appendChild(script);
  });
}
export default globalThis.mermaid;

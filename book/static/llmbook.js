// Give each Mermaid diagram its natural width (its viewBox's) as the CSS variable
// --natural-width, from which llmbook.css sizes it. sphinxcontrib-mermaid draws the diagrams
// after the page loads, and again when the reader switches between light and dark mode, so
// every diagram's block is watched for a new drawing.
"use strict";

(() => {
  const size = (svg) => {
    const width = svg.viewBox?.baseVal?.width;
    if (width > 0) svg.style.setProperty("--natural-width", `${width}px`);
  };
  const start = () => {
    const observer = new MutationObserver((records) => {
      for (const record of records) {
        record.target.querySelectorAll(":scope > svg").forEach(size);
      }
    });
    for (const block of document.querySelectorAll("pre.mermaid")) {
      observer.observe(block, { childList: true });
      block.querySelectorAll(":scope > svg").forEach(size);
    }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

// The website's search scorer (Sphinx's html_search_scorer): Sphinx's default weights, plus
// two rules for a book. A section whose title holds the query ("The KV cache" for "KV cache")
// is the place that explains it, so it ranks above pages that only use the words; and a
// chapter ranks above the worked solutions of its exercises.
// Each result is [docname, title, anchor, description, score, filename]; only section-title
// matches carry an anchor.
var Scorer = {
  score: (result) => {
    const [docname, , anchor, , score] = result;
    let adjusted = score;
    if (anchor) adjusted += 15;
    if (docname.startsWith("chapters/solutions/")) adjusted -= 5;
    return adjusted;
  },

  // Sphinx's defaults (sphinx/themes/basic/static/searchtools.js).
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: { 0: 15, 1: 5, 2: -5 },
  objPrioDefault: 0,
  title: 15,
  partialTitle: 7,
  term: 5,
  partialTerm: 2,
};

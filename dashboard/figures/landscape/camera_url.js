/* Mirror the 3-D camera in the dashboard's URL (?__PARAM__=x,y,z, the eye rounded to 0.01)
   when a drag ends, so a copied link reopens the same view. Read by
   dashboard/figures/landscape/camera.py, which fills in __PARAM__; plotly fills in the
   div's id. The figure is in an iframe of the dashboard's own origin: the parent page's
   address is replaced (no new history entry, no rerun); Streamlit sends it back with its
   next rerun, where the page reads it. Outside an iframe (an exported file) it does nothing. */
(function () {
  var gd = document.getElementById('{plot_id}');
  var param = '__PARAM__';
  if (!gd || !gd.on || window.parent === window) { return; }
  function eye(event) {
    for (var key in event) {
      var m = /^(scene\d*)\.camera/.exec(key);
      if (!m) { continue; }
      var value = event[m[1] + '.camera'];
      var camera = value && typeof value === 'object' ? value : (gd.layout[m[1]] || {}).camera;
      if (camera && camera.eye) { return camera.eye; }
    }
    return null;
  }
  function text(e) {
    return [e.x, e.y, e.z].map(function (v) { return String(Math.round(v * 100) / 100); }).join(',');
  }
  gd.on('plotly_relayout', function (event) {
    var e = event && eye(event);
    if (!e) { return; }
    try {
      var url = new URL(window.parent.location.href);
      url.searchParams.set(param, text(e));
      window.parent.history.replaceState(window.parent.history.state, '',
                                         url.toString().replace(/%2C/g, ','));
    } catch (err) {}  /* another origin: the URL is left as it is */
  });
})();

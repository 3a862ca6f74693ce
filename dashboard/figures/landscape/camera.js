/* Rotating one 3-D scene of a figure rotates the others (Plotly has no camera linking).
   Read by dashboard/figures/landscape/camera.py, which fills in __SCENES__ (the scenes'
   names); plotly fills in the div's id. */
(function () {
  var gd = document.getElementById('{plot_id}');
  var scenes = __SCENES__;
  if (!gd || !gd.on || scenes.length < 2) { return; }
  var busy = false, pending = null, sent = null;

  /* The one place plotly.js internals are used: a scene's live view (gd._fullLayout[name]
     ._scene: setViewport turns it without touching the layout, getCamera reads it while it
     glides). Where a plotly.js lacks them this returns null, and the other scenes follow
     when a drag ends, through the public Plotly.relayout (see link). */
  function live(name) {
    var full = gd._fullLayout && gd._fullLayout[name];
    var scene = full && full._scene;
    if (!scene || typeof scene.setViewport !== 'function' ||
        typeof scene.getCamera !== 'function') { return null; }
    return {
      set: function (camera) { scene.setViewport({camera: camera, aspectratio: full.aspectratio}); },
      get: function () { return scene.getCamera(); }
    };
  }

  /* a scene reports the camera it was given back with rounding noise: compare at 1e-6 */
  function rounded(key, v) { return typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v; }
  function changed(event) {
    for (var key in event) {
      var m = /^(scene\d*)\.camera/.exec(key);
      if (m && scenes.indexOf(m[1]) >= 0) {
        var value = event[m[1] + '.camera'];
        var layout = gd.layout[m[1]];
        var camera = value && typeof value === 'object' ? value : layout && layout.camera;
        if (camera) { return {source: m[1], camera: JSON.stringify(camera, rounded)}; }
      }
    }
    return null;
  }
  /* While dragging: turn the other scenes' views directly. Plotly.relayout here would
     also reset the dragged scene to its not-yet-saved camera and make it jump. */
  function turn(source, camera) {
    scenes.forEach(function (name) {
      var view = name === source ? null : live(name);
      if (!view) { return; }
      var copy = JSON.parse(camera);
      copy.projection = copy.projection || {type: 'perspective'};
      try { view.set(copy); } catch (e) {}
    });
  }
  var timer = null;
  function follow(event) {
    var found = event && changed(event);
    if (!found) { return; }
    turn(found.source, found.camera);
    /* the dragged view glides on a little after the last mouse move: follow it to rest */
    var source = live(found.source), last = found.camera, left = 20;
    clearTimeout(timer);
    function settle() {
      if (!source || --left < 0) { return; }
      var now = JSON.stringify(source.get(), rounded);
      if (now !== last) { last = now; turn(found.source, now); }
      timer = setTimeout(settle, 50);
    }
    timer = setTimeout(settle, 50);
  }
  function done() {
    busy = false;
    if (pending) { var next = pending; pending = null; link(next); }
  }
  /* After the drag (the dragged scene has saved its camera): make it every scene's camera,
     through the public Plotly.relayout. */
  function link(event) {
    var found = event && changed(event);
    if (!found || found.camera === sent) { return; }  /* our own update coming back */
    if (busy) { pending = event; return; }  /* keep the latest; apply it when this one is done */
    var update = {};
    scenes.forEach(function (name) {
      if (name !== found.source) { update[name + '.camera'] = JSON.parse(found.camera); }
    });
    busy = true;
    sent = found.camera;
    try { Promise.resolve(Plotly.relayout(gd, update)).then(done, done); } catch (err) { done(); }
  }
  gd.on('plotly_relayouting', follow);
  gd.on('plotly_relayout', link);
})();

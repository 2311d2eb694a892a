'use strict';
'require view';
'require poll';
'require rpc';
'require ui';

// mwan status for LuCI: the `mwan` ubus object's status, explain and
// history (read; history polled with `since` for what is new), and
// override / restart / reload (write, admins only through the
// ACL in root/usr/share/rpcd/acl.d/luci-app-mwan.json). The names here
// are checked against what mwand serves by crates/mwan-ubus/tests/luci_app.rs.

var callStatus = rpc.declare({
	object: 'mwan',
	method: 'status',
	expect: { '': {} }
});

var callExplain = rpc.declare({
	object: 'mwan',
	method: 'explain',
	expect: { explain: [] }
});

var callHistory = rpc.declare({
	object: 'mwan',
	method: 'history',
	params: [ 'since' ],
	expect: { '': {} }
});

var callOverride = rpc.declare({
	object: 'mwan',
	method: 'override',
	params: [ 'interface', 'policy', 'clear' ]
});

var callRestart = rpc.declare({
	object: 'mwan',
	method: 'restart',
	params: [ 'interface' ]
});

var callReload = rpc.declare({
	object: 'mwan',
	method: 'reload'
});

// The last hour per WAN from `mwan history`: second -> [state, latency
// ms, loss %], kept by addHistory from each reply (the whole hour first,
// then what is new since the reply's `next`).
var HOUR = 3600, BUCKET = 10, WIDTH = HOUR / BUCKET, HEIGHT = 40;
var hist = { since: 0, next: 0, states: [], series: {} };

function figure(v, unit) {
	return (v == null) ? '–' : '%.1f%s'.format(v, unit);
}

function badge(state) {
	var cls = { online: 'success', offline: 'danger', connecting: 'warning', disconnecting: 'warning' }[state] || 'notice';
	return E('span', { 'class': 'label ' + cls, 'data-state': state }, [ state ]);
}

// Folds one history reply into h; a reply with `reset` (mwand's clock
// restarted: a reboot) replaces what h holds. Seconds older than an hour go.
function addHistory(h, reply) {
	if (!reply || reply.next == null) return h;
	if (reply.reset) h.series = {};
	h.states = reply.states || h.states;
	(reply.wans || []).forEach(function(w) {
		var s = h.series[w.name] || (h.series[w.name] = {});
		if (w.t0 == null) return;
		for (var k = 0; k < (w.state || []).length; k++)
			s[w.t0 + k] = [ w.state[k], w.latency_ms[k], w.loss_pct[k] ];
		for (var t in s) if (t <= reply.next - HOUR) delete s[t];
	});
	h.since = h.next = reply.next;
	return h;
}

// Ten-second buckets over the hour up to `now`: mean latency, worst loss,
// and the buckets where the state changed, with the state it changed to.
function graphData(series, now, states) {
	var start = now - HOUR + 1, d = { latency: [], loss: [], marks: [], max: 10 }, prev = null;
	for (var b = 0; b < WIDTH; b++) {
		var sum = 0, n = 0, worst = null;
		for (var t = start + b * BUCKET; t < start + (b + 1) * BUCKET; t++) {
			var p = (series || {})[t];
			if (!p) continue;
			if (p[1] != null) { sum += p[1]; n++; }
			if (p[2] != null) worst = Math.max(worst || 0, p[2]);
			if (p[0] != null) {
				if (prev != null && p[0] !== prev) d.marks.push([ b, states[p[0]] || 'unknown' ]);
				prev = p[0];
			}
		}
		d.latency.push(n ? sum / n : null);
		d.loss.push(worst);
		if (n && sum / n > d.max) d.max = sum / n;
	}
	return d;
}

// The graph as SVG markup (numbers only, nothing from the reply's text):
// loss as bars from the bottom (0-100 %), latency as a line scaled to the
// hour's highest, a dashed line where the state changed, red when to offline.
function graphSvg(d) {
	var out = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + WIDTH + ' ' + HEIGHT +
		'" preserveAspectRatio="none" style="width:100%;height:' + HEIGHT + 'px" data-max-ms="' + d.max.toFixed(1) + '">';
	d.loss.forEach(function(l, x) {
		if (l) out += '<rect x="' + x + '" y="' + (HEIGHT - l / 100 * HEIGHT).toFixed(1) + '" width="1" height="' + (l / 100 * HEIGHT).toFixed(1) + '" fill="#d9534f" fill-opacity="0.5"/>';
	});
	d.marks.forEach(function(m) {
		out += '<line x1="' + m[0] + '" x2="' + m[0] + '" y1="0" y2="' + HEIGHT + '" stroke="' +
			(m[1] == 'offline' ? '#d9534f' : '#888') + '" stroke-dasharray="2 2" vector-effect="non-scaling-stroke" data-state="' + m[1] + '"/>';
	});
	var path = '', pen = false;
	d.latency.forEach(function(v, x) {
		if (v == null) { pen = false; return; }
		path += (pen ? 'L' : 'M') + x + ' ' + (HEIGHT - 1 - v / d.max * (HEIGHT - 2)).toFixed(1);
		pen = true;
	});
	return out + '<path d="' + path + '" fill="none" stroke="currentColor" vector-effect="non-scaling-stroke"/></svg>';
}

function graph(name) {
	var d = graphData(hist.series[name], hist.next, hist.states);
	var svg = new DOMParser().parseFromString(graphSvg(d), 'image/svg+xml').documentElement;
	return E('div', {
		'class': 'mwan-graph', 'data-interface': name,
		'title': _('Last hour: latency (line, up to %.0f ms), loss (bars), state changes (dashed)').format(d.max)
	}, [ svg ]);
}

function ask(question, call) {
	ui.showModal(_('Confirm'), [
		E('p', {}, [ question ]),
		E('div', { 'class': 'right' }, [
			E('button', { 'class': 'btn', 'click': ui.hideModal }, [ _('Cancel') ]), ' ',
			E('button', {
				'class': 'btn cbi-button-action',
				'click': function() {
					ui.hideModal();
					return call().then(function(reply) {
						ui.addNotification(null, E('p', {}, [ (reply && reply.message) || _('Done') ]), 'info');
					}, function(err) {
						ui.addNotification(null, E('p', {}, [ _('mwand refused: %s').format(err.message || err) ]), 'danger');
					});
				}
			}, [ _('Confirm') ])
		])
	]);
}

return view.extend({
	load: function() {
		return Promise.all([ callStatus(), L.resolveDefault(callExplain(), []), L.resolveDefault(callHistory(0), null) ]);
	},

	renderWans: function(status, writable) {
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, [ _('Uplinks') ]),
			E('table', { 'class': 'table' }, [
				E('tr', { 'class': 'tr table-titles' }, [
					E('th', { 'class': 'th' }, [ _('Interface') ]),
					E('th', { 'class': 'th' }, [ _('State') ]),
					E('th', { 'class': 'th' }, [ _('Latency') ]),
					E('th', { 'class': 'th' }, [ _('Jitter') ]),
					E('th', { 'class': 'th' }, [ _('Loss') ]),
					E('th', { 'class': 'th' }, [ _('Score') ]),
					E('th', { 'class': 'th' }, [ _('Last hour') ]),
					E('th', { 'class': 'th cbi-section-actions' }, [])
				])
			].concat((status.interfaces || []).map(function(i) {
				return E('tr', { 'class': 'tr', 'data-interface': i.name }, [
					E('td', { 'class': 'td' }, [ E('strong', {}, [ i.name ]), E('br'), E('small', {}, [ i.device || _('no device') ]) ]),
					E('td', { 'class': 'td' }, [ badge(i.state), ' ', E('small', {}, [ '%t'.format(i.state_age_s) ]),
						i.reason ? E('div', {}, [ E('small', {}, [ i.reason ]) ]) : '' ]),
					E('td', { 'class': 'td' }, [ figure(i.latency_ms, ' ms') ]),
					E('td', { 'class': 'td' }, [ figure(i.jitter_ms, ' ms') ]),
					E('td', { 'class': 'td' }, [ figure(i.loss_pct, ' %') ]),
					E('td', { 'class': 'td' }, [ figure(i.score, '') ]),
					E('td', { 'class': 'td', 'style': 'min-width:180px' }, [ graph(i.name) ]),
					E('td', { 'class': 'td cbi-section-actions' }, writable ? [
						E('button', {
							'class': 'btn cbi-button',
							'click': ui.createHandlerFn(this, function() {
								ask(_('Restart the tracker of %s?').format(i.name), function() { return callRestart(i.name); });
							})
						}, [ _('Restart tracker') ])
					] : [])
				]);
			}, this)))
		]);
	},

	renderPolicies: function(status, explain, writable) {
		var lines = {};
		(explain || []).forEach(function(e) { lines[e.policy] = e.lines; });
		var names = (status.interfaces || []).map(function(i) { return i.name; });
		var overrides = status.overrides || [];
		return E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ _('Policies') ]) ].concat((status.policies || []).map(function(p) {
			var select = E('select', { 'class': 'cbi-input-select' }, names.map(function(n) { return E('option', { 'value': n }, [ n ]); }));
			var forced = overrides.filter(function(o) { return o.policy == p.name || o.policy == null; })[0];
			return E('div', { 'class': 'cbi-section-node', 'data-policy': p.name }, [
				E('h4', {}, [ p.name ]),
				E('p', {}, p.active.length ? p.active.map(function(a) {
					return E('span', { 'class': 'label', 'data-interface': a.interface }, [ '%s %.0f%%'.format(a.interface, a.share_pct) ]);
				}) : [ _('No usable uplink: %s').format(p.last_resort || 'unreachable') ]),
				forced ? E('p', {}, [ E('em', {}, [ _('Overridden onto %s').format(forced.interface) ]) ]) : '',
				E('ul', {}, (lines[p.name] || []).map(function(l) { return E('li', {}, [ l ]); })),
				writable ? E('div', {}, [
					select, ' ',
					E('button', {
						'class': 'btn cbi-button-action',
						'click': function() {
							var w = select.value;
							ask(_('Send policy %s over %s only, until cleared?').format(p.name, w), function() { return callOverride(w, p.name, undefined); });
						}
					}, [ _('Override') ]), ' ',
					E('button', {
						'class': 'btn cbi-button-reset',
						'click': function() {
							ask(_('Clear the override of policy %s?').format(p.name), function() { return callOverride(undefined, p.name, true); });
						}
					}, [ _('Clear') ])
				]) : ''
			]);
		})));
	},

	renderAll: function(status, explain) {
		var writable = L.hasViewPermission ? L.hasViewPermission() : true;
		return E('div', { 'id': 'mwan-status' }, [
			E('p', {}, [ _('Up %t, config %s').format(status.uptime_s || 0, status.config || '?'),
				status.dataplane_error ? E('div', { 'class': 'alert-message warning' }, [ status.dataplane_error ]) : '' ]),
			this.renderWans(status, writable),
			this.renderPolicies(status, explain, writable),
			writable ? E('div', { 'class': 'cbi-page-actions' }, [
				E('button', {
					'class': 'btn cbi-button-apply',
					'click': function() { ask(_('Reload mwand\'s configuration?'), function() { return callReload(); }); }
				}, [ _('Reload config') ])
			]) : ''
		]);
	},

	render: function(data) {
		var self = this;
		addHistory(hist, data[2]);
		poll.add(function() {
			return Promise.all([ callStatus(), L.resolveDefault(callExplain(), []), L.resolveDefault(callHistory(hist.since), null) ]).then(function(d) {
				addHistory(hist, d[2]);
				var node = document.getElementById('mwan-status');
				if (node) node.parentNode.replaceChild(self.renderAll(d[0], d[1]), node);
			});
		});
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('Multi-WAN') ]),
			this.renderAll(data[0], data[1])
		]);
	},

	// For the view's tests (crates/mwan-ubus/tests/luci_app.rs, under node).
	addHistory: addHistory,
	graphData: graphData,
	graphSvg: graphSvg,

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});

'use strict';
'require view';
'require poll';
'require rpc';
'require ui';

// mwan status for LuCI: the `mwan` ubus object's status and explain
// (read), and override / restart / reload (write, admins only through the
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

// Latency seen at each poll, per interface, for the sparkline: the last
// ten minutes at LuCI's default 5 s poll interval.
var KEEP = 120;
var seen = {};

function figure(v, unit) {
	return (v == null) ? '–' : '%.1f%s'.format(v, unit);
}

function badge(state) {
	var cls = { online: 'success', offline: 'danger', connecting: 'warning', disconnecting: 'warning' }[state] || 'notice';
	return E('span', { 'class': 'label ' + cls, 'data-state': state }, [ state ]);
}

function sparkline(points) {
	var w = KEEP, h = 30, max = 10, d = '', pen = false;
	points.forEach(function(p) { if (p != null && p > max) max = p; });
	points.forEach(function(p, x) {
		if (p == null) { pen = false; return; }
		d += (pen ? 'L' : 'M') + (x + w - points.length) + ' ' + (h - 1 - p / max * (h - 2)).toFixed(1);
		pen = true;
	});
	var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
	svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
	svg.setAttribute('preserveAspectRatio', 'none');
	svg.setAttribute('style', 'width:100%;height:30px');
	var path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
	path.setAttribute('d', d);
	path.setAttribute('fill', 'none');
	path.setAttribute('stroke', 'currentColor');
	path.setAttribute('vector-effect', 'non-scaling-stroke');
	svg.appendChild(path);
	return svg;
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
		return Promise.all([ callStatus(), L.resolveDefault(callExplain(), []) ]);
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
					E('th', { 'class': 'th' }, [ _('Last minutes') ]),
					E('th', { 'class': 'th cbi-section-actions' }, [])
				])
			].concat((status.interfaces || []).map(function(i) {
				var s = seen[i.name] || (seen[i.name] = []);
				s.push(i.latency_ms);
				if (s.length > KEEP) s.shift();
				return E('tr', { 'class': 'tr', 'data-interface': i.name }, [
					E('td', { 'class': 'td' }, [ E('strong', {}, [ i.name ]), E('br'), E('small', {}, [ i.device || _('no device') ]) ]),
					E('td', { 'class': 'td' }, [ badge(i.state), ' ', E('small', {}, [ '%t'.format(i.state_age_s) ]),
						i.reason ? E('div', {}, [ E('small', {}, [ i.reason ]) ]) : '' ]),
					E('td', { 'class': 'td' }, [ figure(i.latency_ms, ' ms') ]),
					E('td', { 'class': 'td' }, [ figure(i.jitter_ms, ' ms') ]),
					E('td', { 'class': 'td' }, [ figure(i.loss_pct, ' %') ]),
					E('td', { 'class': 'td' }, [ figure(i.score, '') ]),
					E('td', { 'class': 'td' }, [ sparkline(s) ]),
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
		poll.add(function() {
			return Promise.all([ callStatus(), L.resolveDefault(callExplain(), []) ]).then(function(d) {
				var node = document.getElementById('mwan-status');
				if (node) node.parentNode.replaceChild(self.renderAll(d[0], d[1]), node);
			});
		});
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('Multi-WAN') ]),
			this.renderAll(data[0], data[1])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});

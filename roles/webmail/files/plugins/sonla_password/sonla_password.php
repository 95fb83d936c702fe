<?php
/**
 * sonla_password: the forced password change of the Sơn La mail system.
 *
 * Copyright: Sơn La IT center
 * GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * Installed by the sonla.mail.webmail role (docs/webmail.md).
 *
 * An account flagged must-change (R6.1a on issue, R8.3c on restoration) or whose password is
 * older than the policy's maximum age (R6.1b) is refused by Dovecot, so Roundcube could never log
 * it in. This plugin checks every login first with sonla-mail-passwd (the collection's own rules,
 * plugins/module_utils/_password*.py). When the password is right but must be changed, the session
 * is confined to one form, BEFORE any IMAP login: every request of that session shows the form
 * until the password is changed (or the user leaves). The form needs the current password again,
 * sends old and new to sonla-mail-passwd on stdin, shows each broken rule in Vietnamese and English
 * (R6.2), and on success logs the user in with the new password and opens the inbox.
 *
 * A suspended account (R8.1) with the RIGHT password gets a page that says so, since when, and that
 * its agency must request the restoration in writing (R8.3a), in Vietnamese with an English line. A
 * wrong password gets Roundcube's usual refusal, whatever the account: sonla-mail-passwd says nothing
 * but "invalid" before the password is verified.
 */
class sonla_password extends rcube_plugin
{
    // A pending change expires after this many seconds; the user logs in again.
    const PENDING_TTL = 900;
    // Wrong current passwords allowed on the form before the user is sent back to the login page.
    const MAX_FAILURES = 3;
    // R8.1, R8.3a: shown to a suspended user who gave the right password, both languages on one page.
    const SUSPENDED_VI = 'Hộp thư %s đã bị tạm khóa từ ngày %s.';
    const RESTORE_VI   = 'Để mở lại hộp thư, cơ quan, đơn vị của bạn phải gửi văn bản đề nghị khôi phục đến đơn vị quản lý hệ thống thư điện tử của tỉnh.';
    const SUSPENDED_EN = 'The mailbox %s has been suspended since %s.';
    const RESTORE_EN   = 'To restore it, your agency must request its restoration in writing from the province\'s mail system administrators.';

    private $rc;
    private $pending;
    private $suspended;
    private $violations = [];
    private $error;

    public function init()
    {
        $this->rc = rcmail::get_instance();
        $this->add_hook('authenticate', [$this, 'authenticate']);
        $this->add_hook('startup', [$this, 'startup']);
    }

    /**
     * Run sonla-mail-passwd with a JSON request on stdin (never in argv); its JSON answer, or null.
     */
    public static function run($command, array $request)
    {
        $rc   = rcmail::get_instance();
        $argv = (array) $rc->config->get('sonla_password_command',
            ['/usr/bin/sudo', '-n', '/usr/local/sbin/sonla-mail-passwd']);
        $argv[] = $command;
        // The web client's address, for the tool's rate limit per client (R10.2b).
        $request['client'] = substr((string) rcube_utils::remote_addr(), 0, 64);
        $spec   = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
        // An argv array: no shell is involved.
        $process = proc_open($argv, $spec, $pipes);
        if (!is_resource($process)) {
            rcube::raise_error(['code' => 500, 'message' => 'sonla_password: cannot start ' . implode(' ', $argv)], true, false);
            return null;
        }
        fwrite($pipes[0], json_encode($request));
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $code   = proc_close($process);
        $answer = json_decode($out, true);
        if ($code > 1 || !is_array($answer)) {
            rcube::raise_error(['code' => 500,
                'message' => "sonla_password: sonla-mail-passwd $command failed ($code): " . trim($err . ' ' . $out)], true, false);
            return null;
        }
        return $answer;
    }

    /**
     * The violations of a refused change as text, the user's language first (R6.2: "which rule").
     */
    public static function describe(array $violations, $language)
    {
        $vi    = strpos((string) $language, 'vi') === 0;
        $lines = [];
        foreach ($violations as $v) {
            $lines[] = [
                'rule'      => $v['rule'],
                'code'      => $v['code'],
                'primary'   => $vi ? $v['message_vi'] : $v['message_en'],
                'secondary' => $vi ? $v['message_en'] : $v['message_vi'],
            ];
        }
        return $lines;
    }

    /**
     * Before Roundcube's IMAP login: divert an account that must change its password (R6.1a, R6.1b, R8.3c).
     */
    public function authenticate($args)
    {
        if (empty($args['valid']) || !empty($args['abort']) || $args['user'] === '' || $args['pass'] === '') {
            return $args;
        }
        $answer = self::run('status', ['address' => $args['user'], 'password' => $args['pass']]);
        if ($answer && ($answer['status'] ?? null) === 'suspended') {
            // The password was verified: tell this user why, instead of the generic refusal (R8.1, R8.3a).
            $this->rc->session->regenerate_id(false);
            $_SESSION['sonla_suspended'] = [
                'user'  => strtolower(trim($args['user'])),
                'since' => (string) ($answer['since'] ?? ''),
            ];
            $this->rc->output->redirect(['_task' => 'login', '_action' => 'plugin.sonla_password-suspended']);
        }
        if ($answer && ($answer['status'] ?? null) === 'change_required') {
            // A new session id for the confined session; nothing else is in it.
            $this->rc->session->regenerate_id(false);
            $_SESSION['sonla_password'] = [
                'user'     => strtolower(trim($args['user'])),
                'host'     => $args['host'],
                'reason'   => $answer['reason'],
                'since'    => time(),
                'failures' => 0,
            ];
            $this->rc->output->redirect(['_task' => 'login', '_action' => 'plugin.sonla_password']);
        }
        // ok, invalid, throttled (nothing verified): Roundcube's own login goes on and Dovecot decides.
        return $args;
    }

    /**
     * Every request of a session with a pending change shows the change form; nothing else is reachable.
     */
    public function startup($args)
    {
        if (!empty($_SESSION['sonla_suspended']) && empty($_SESSION['user_id'])) {
            $this->suspended = $_SESSION['sonla_suspended'];
            // Shown once: the next request is the login page again.
            $this->rc->session->remove('sonla_suspended');
            $this->register_handler('plugin.suspended', [$this, 'suspended_html']);
            $this->rc->output->set_pagetitle('Hộp thư bị tạm khóa');
            $this->rc->output->send('sonla_password.suspended');
        }
        if (empty($_SESSION['sonla_password']) || !empty($_SESSION['user_id'])) {
            return $args;
        }
        $this->pending = $_SESSION['sonla_password'];
        if ($args['action'] === 'login' || time() - $this->pending['since'] > self::PENDING_TTL) {
            // A new login attempt, or too late: start again from the login page. (Roundcube keeps
            // session keys that are merely unset(); remove() drops them.)
            $this->rc->session->remove('sonla_password');
            return $args;
        }
        $this->add_texts('localization/');
        if ($args['action'] === 'plugin.sonla_password-cancel') {
            $this->rc->session->remove('sonla_password');
            $this->rc->output->redirect(['_task' => 'login']);
        }
        if ($args['action'] === 'plugin.sonla_password-save' && !empty($_POST)) {
            $this->save();
        }
        $this->show();
    }

    private function save()
    {
        if (!$this->rc->check_request()) {
            $this->error = $this->rc->gettext('invalidrequest');
            return;
        }
        $old     = rcube_utils::get_input_string('_curpasswd', rcube_utils::INPUT_POST, true);
        $new     = rcube_utils::get_input_string('_newpasswd', rcube_utils::INPUT_POST, true);
        $confirm = rcube_utils::get_input_string('_confpasswd', rcube_utils::INPUT_POST, true);
        if ($new !== $confirm) {
            $this->error = $this->gettext('mismatch');
            return;
        }
        $answer = self::run('change', [
            'address'      => $this->pending['user'],
            'old_password' => $old,
            'new_password' => $new,
        ]);
        if (!$answer) {
            $this->error = $this->gettext('internalerror');
            return;
        }
        if (empty($answer['changed'])) {
            $this->violations = $answer['violations'] ?? [];
            if (in_array($answer['status'] ?? null, ['invalid', 'throttled'], true)
                && ++$_SESSION['sonla_password']['failures'] >= self::MAX_FAILURES
            ) {
                $this->rc->session->remove('sonla_password');
                $this->rc->output->show_message('loginfailed', 'warning', null, true);
                $this->rc->output->redirect(['_task' => 'login']);
            }
            return;
        }
        // Changed (R6.1a): the account may read mail now; log it in with the new password.
        $this->rc->session->remove('sonla_password');
        $this->rc->log_login($this->pending['user'] . ' (password changed)', true);
        if ($this->rc->login($this->pending['user'], $new, $this->pending['host'], false)) {
            $this->rc->session->remove('temp');
            $this->rc->session->regenerate_id(false);
            $this->rc->session->set_auth_cookie();
            $this->rc->log_login();
            $this->rc->output->redirect(['_task' => 'mail'], 0, true);
        }
        $this->rc->output->show_message($this->gettext('changedlogin'), 'confirmation', null, true);
        $this->rc->output->redirect(['_task' => 'login']);
    }

    private function show()
    {
        $this->register_handler('plugin.changeform', [$this, 'form_html']);
        $this->rc->output->set_pagetitle($this->gettext('title'));
        if ($this->error) {
            $this->rc->output->show_message($this->error, 'error');
        }
        $this->rc->output->send('sonla_password.change');
    }

    /**
     * The suspension notice (R8.1, R8.3a): Vietnamese first (UTF-8), then the English line.
     */
    public function suspended_html($attrib)
    {
        $user  = $this->suspended['user'];
        $since = $this->suspended['since'];
        $day   = preg_match('/^(\d{4})-(\d{2})-(\d{2})$/', $since, $m) ? "$m[3]/$m[2]/$m[1]" : '?';
        $vi    = html::p(['id' => 'sonla-suspended-vi', 'lang' => 'vi'],
            rcube::Q(sprintf(self::SUSPENDED_VI, $user, $day)) . html::br() . rcube::Q(self::RESTORE_VI));
        $en    = html::p(['id' => 'sonla-suspended-en', 'lang' => 'en', 'class' => 'text-muted'],
            rcube::Q(sprintf(self::SUSPENDED_EN, $user, $since ?: '?')) . html::br() . rcube::Q(self::RESTORE_EN));
        $back  = html::a(['href' => $this->rc->url(['_task' => 'login']), 'id' => 'sonla-suspended-back'],
            rcube::Q('Quay lại trang đăng nhập (Back to the login page)'));
        return html::div(['id' => 'sonla-suspended', 'class' => 'alert alert-danger', 'role' => 'alert',
            'data-since' => $since], $vi . $en . html::p(null, $back));
    }

    public function form_html($attrib)
    {
        $language = $_SESSION['language'] ?? $this->rc->config->get('language');
        $reason   = $this->pending['reason'] === 'expired'
            ? $this->gettext(['name' => 'expired', 'vars' => ['days' => $this->rc->config->get('sonla_password_max_age_days', 90)]])
            : $this->gettext('mustchange');

        $intro = html::p(['id' => 'sonla-password-reason', 'class' => 'alert alert-warning'],
            rcube::Q($reason) . html::br() . html::span('font-weight-bold', rcube::Q($this->pending['user'])));

        $list = '';
        if ($this->violations) {
            $items = '';
            foreach (self::describe($this->violations, $language) as $line) {
                $items .= html::tag('li', ['data-rule' => $line['rule'], 'data-code' => $line['code']],
                    rcube::Q($line['primary']) . ' ' . html::span(['class' => 'text-muted', 'lang' => strpos($language, 'vi') === 0 ? 'en' : 'vi'],
                        '(' . rcube::Q($line['secondary']) . ')') . ' [' . rcube::Q($line['rule']) . ']');
            }
            $list = html::div(['id' => 'sonla-password-violations', 'class' => 'alert alert-danger', 'role' => 'alert'],
                html::p(null, rcube::Q($this->gettext('refused'))) . html::tag('ul', null, $items));
        }

        $table  = new html_table(['cols' => 2]);
        $fields = ['_curpasswd' => 'curpasswd', '_newpasswd' => 'newpasswd', '_confpasswd' => 'confpasswd'];
        foreach ($fields as $name => $label) {
            $input = new html_passwordfield(['name' => $name, 'id' => 'sonla' . $name, 'class' => 'form-control',
                'autocomplete' => $name === '_curpasswd' ? 'current-password' : 'new-password', 'required' => 'required']);
            $table->add('title', html::label('sonla' . $name, rcube::Q($this->gettext($label))));
            $table->add('input', $input->show());
        }

        $hidden = new html_hiddenfield(['name' => '_token', 'value' => $this->rc->get_request_token()]);
        $submit = html::tag('button', ['type' => 'submit', 'id' => 'sonla-password-submit', 'class' => 'button mainaction submit btn btn-primary btn-lg text-uppercase w-100'],
            rcube::Q($this->gettext('save')));
        $cancel = html::a(['href' => $this->rc->url(['_task' => 'login', '_action' => 'plugin.sonla_password-cancel']), 'id' => 'sonla-password-cancel'],
            rcube::Q($this->gettext('cancel')));
        $rules = html::p(['id' => 'sonla-password-rules', 'class' => 'hint'], rcube::Q($this->gettext(['name' => 'rules', 'vars' => [
            'min'     => $this->rc->config->get('sonla_password_min_length', 8),
            'special' => implode(' ', str_split($this->rc->config->get('sonla_password_special_characters', '!@#%$*&'))),
        ]])));

        // id "login-form": the skin's login page layout.
        return html::tag('form', [
                'id' => 'login-form', 'name' => 'sonla-password-form', 'method' => 'post', 'class' => 'propform',
                'action' => $this->rc->url(['_task' => 'login', '_action' => 'plugin.sonla_password-save']),
            ],
            html::div(['id' => 'sonla-password-form'], $hidden->show() . $intro . $list . $rules
            . $table->show() . html::p('formbuttons', $submit) . html::p(null, $cancel)));
    }
}
